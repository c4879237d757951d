"""The app keeps what its byte budget holds: a unit that ended uncleanly sends it at start.

:class:`App` with a used-up day (level ``coarse_sensors``) takes crossings and readings
through :meth:`App.emit` and ends without stopping (its database closed as ``kill -9``
leaves it). The next start, here without any ``[budget]``, sends the held crossings as
they are and the open summary closed, to real Mosquitto, before anything new.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from gateway.app import App
from gateway.localservers import Mosquitto
from tests.support.budget import rows
from tests.support.transport import Collector, sensor_draft, settings_for
from tests.unit.budget.test_budget import _crossing

LIMIT = 65_536


def test_what_the_budget_held_is_sent_at_the_next_start_even_without_a_budget(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    usage = {"day": day, "day_bytes": LIMIT, "month": day[:7], "month_bytes": LIMIT}
    (data_dir / "budget.json").write_text(json.dumps(usage))
    budget = {"bytes_per_day": LIMIT, "sensor_interval_s": 3600}
    app = App(settings_for(tmp_path, mosquitto.port, budget=budget))
    assert app.budget is not None and app.budget.level == "coarse_sensors"
    for n in range(1, 6):
        app.emit([_crossing(n), sensor_draft(n)])
    assert app.outbox.depth == 0 and rows(data_dir / "outbox.sqlite3") == (5, 1)
    app.outbox._db.close()  # ends here: no stop, no flush

    collector = Collector(mosquitto.port, ["city/#"], client_id="audit")
    again = App(settings_for(tmp_path, mosquitto.port))  # no [budget] any more
    assert again.budget is None
    again.start()
    try:
        assert collector.wait_for(lambda: len(collector.payloads()) >= 6, 20)
    finally:
        again.stop()
        collector.close()
    events = [e for e in collector.payloads() if e["type"] in ("line_crossing", "sensor_reading")]
    assert [e["data"].get("track_id") for e in events[:5]] == [1, 2, 3, 4, 5]
    summary = events[5]["data"]
    assert summary["summary"]["count"] == 5 and summary["values"]["n"] == 3.0
    assert [e["seq"] for e in events] == list(range(1, 7))  # the first events of the run
    assert rows(data_dir / "outbox.sqlite3") == (0, 0)
