"""``kill -9`` in the middle of a write to the outbox's files (a torn write), for real.

The fault campaign's :class:`~gateway.bench.chaos.parts.TornWrite` preload makes a
process SIGKILL itself halfway through a ``pwrite64`` to a file of its outbox (a WAL
frame or a database page half written). A writer stores events in a loop and is
killed that way four times, at the first, second, fourth and eighth write after it is
armed (a frame header, pages, the middle of a transaction): the outbox must open
undamaged every time, with every seq the writer was told about and none reused (WAL
mode: the torn transaction was never committed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.bench.chaos.parts import TornWrite
from gateway.events import Topics
from gateway.transport.outbox import Outbox

TOPICS = Topics("city", "s", "g")

WRITER = """
import sys
from pathlib import Path
from gateway.events import Draft, Topics
from gateway.transport.outbox import Outbox
from gateway.bench.chaos.parts import TornWrite
box = Outbox(Path(sys.argv[1]), Topics("city", "s", "g"))
trigger, skip = Path(sys.argv[2]), int(sys.argv[3])
i = 0
while True:
    drafts = [Draft("sensor_reading", "pm", 1.7e9, {"sensor": "pm", "protocol": "t",
              "values": {"i": i + k}, "extra": {}}) for k in range(20)]
    stored = box.add(drafts)
    print(stored.seqs[-1], flush=True)
    i += 20
    if i == 200:
        TornWrite.arm(trigger, skip)  # armed: write number skip + 1 from now is torn
"""


def test_kill_9_inside_a_write_to_the_outbox_damages_nothing_and_reuses_no_seq(
    tmp_path: Path,
) -> None:
    torn = TornWrite(tmp_path / "shim")
    torn.prepare()
    path = tmp_path / "outbox.sqlite3"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    trigger = tmp_path / "trigger"
    env = {**os.environ, **torn.env(trigger), "LD_PRELOAD": str(torn.shim)}
    seen = 0
    for skip in (0, 1, 3, 7):
        trigger.unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, str(script), str(path), str(trigger), str(skip)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == -9, f"not killed mid-write: {done.returncode} {done.stderr}"
        printed = [int(x) for x in done.stdout.split()]
        assert len(printed) >= 10 and printed[-1] > seen
        with Outbox(path, TOPICS) as box:
            assert box.recovered is None, box.recovered  # a torn write damages nothing
            assert box.last_seq >= printed[-1]  # every seq the writer was told about is kept
            seen = box.last_seq
            assert [r.seq for r in box.fetch(0, 1_000_000)] == list(range(1, seen + 1))
