"""Run a fault campaign: start the system, play the plan, drain, and reconcile.

One thread plays the plan (:mod:`gateway.bench.chaos.plan`) on the real processes and
watches them: a process that exits without being told to is an *unexpected exit*
(recorded with its log tail, then restarted as systemd would). Faults that can lose
what a broker or database acknowledged leave a :class:`LossWindow`. After the last
fault everything is restored, the units' outboxes drain, the units stop (SIGTERM),
the database is reconciled against the units' own records, then the workers and
servers stop.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateway.bench.chaos import parts
from gateway.bench.chaos.hostile import HostileClient, Sent
from gateway.bench.chaos.plan import Fault, Targets, plan, timeline_of
from gateway.bench.chaos.reconcile import (
    Departures,
    LossWindow,
    SeqRanges,
    UnitResult,
    UnitSnapshot,
    reconcile_unit,
)
from gateway.bench.chaos.records import (
    Stored,
    UnitRecord,
    read_database,
    read_letters,
    read_unit,
)
from gateway.localservers import Mosquitto, Process, VictoriaMetrics

log = logging.getLogger(__name__)

_TICK_S = 0.2
_SAMPLE_EVERY_S = 10.0
_WARM_S = 60.0  # a process's RSS is read as "warm" this long after it started
_UNITS_EVERY_S = 1.0  # outbox snapshots: when each event left its outbox
_DB_EVERY_S = 5.0  # database snapshots: what was stored when
_UNIT_SETTLE_S = 0.5  # after a broker kill: the units' deletes of acknowledged rows commit
_DB_SETTLE_S = 0.2
_SNAPSHOT_TIMEOUT_S = 5.0  # a database export before a fault
# Debian's VictoriaMetrics 1.79 loses the rows of about the last 5 s on SIGKILL, even
# after /internal/force_flush (measured); a kill is taken to lose what was not in the
# database this long before it.
DB_KILL_LOSES_S = 20.0
# A broker can hold what it acknowledged while the way to the database is impaired
# (a worker down, the database away or paused, the broker paused), and for this long
# after; with nothing impaired, for this long before a fault.
RECOVERY_S = 30.0
NORMAL_HOLD_S = 15.0


@dataclass(frozen=True)
class Options:
    """What to run: length, seed, event rate, the outbox volume's size."""

    seconds: float
    seed: int
    rate: float = 20.0
    volume_bytes: int = 4 * parts.MIB
    drain_timeout_s: float = 240.0
    warmup_s: float = 15.0


@dataclass
class Exit:
    """A process that exited on its own."""

    name: str
    at_s: float
    code: int | None
    log_tail: str


@dataclass
class Done:
    """A fault as it was played: the plan's fault, what it did, whether it can lose."""

    fault: Fault
    started_s: float
    ended_s: float | None = None
    lossy: bool = False
    note: str = ""
    broker_persistence: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values."""
        out = {k: v for k, v in asdict(self.fault).items() if v not in (None, 0, 0.0)}
        out.update(started_s=round(self.started_s, 1), lossy=self.lossy)
        if self.ended_s is not None:
            out["ended_s"] = round(self.ended_s, 1)
        if self.note:
            out["note"] = self.note
        if self.broker_persistence is not None:
            out["broker_persistence"] = self.broker_persistence
        return out


@dataclass
class Samples:
    """Resource samples of one role: (seconds, RSS MiB, open fds, pid)."""

    points: list[tuple[float, float, int, int]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """First, max and last RSS and fds, and the longest-lived process's growth.

        A restarted process starts small again, so growth is read on the process that
        ran longest: its RSS one minute after it started (warm) and at its last sample.
        """
        if not self.points:
            return {}
        rss = [p[1] for p in self.points]
        fds = [p[2] for p in self.points]
        runs: dict[int, list[tuple[float, float, int, int]]] = {}
        for point in self.points:
            runs.setdefault(point[3], []).append(point)
        longest = max(runs.values(), key=lambda r: r[-1][0] - r[0][0])
        warm = [p for p in longest if p[0] - longest[0][0] >= _WARM_S] or longest[-1:]
        return {
            "rss_mib": {"first": rss[0], "max": max(rss), "last": rss[-1]},
            "fds": {"first": fds[0], "max": max(fds), "last": fds[-1]},
            "samples": len(self.points),
            "processes": len(runs),
            "longest_run": {
                "seconds": round(longest[-1][0] - longest[0][0]),
                "rss_mib_warm": warm[0][1],
                "rss_mib_last": warm[-1][1],
                "rss_mib_max": max(p[1] for p in warm),
                "fds_warm": warm[0][2],
                "fds_last": warm[-1][2],
            },
        }


class Campaign:
    """One campaign in ``work`` (a fresh directory)."""

    def __init__(self, options: Options, work: Path) -> None:
        self.o = options
        self.work = work
        self.units = parts.unit_specs(options.rate)
        self.workers = ("a", "b")
        self.broker = Mosquitto(
            work / "broker",
            persistence=True,
            autosave_interval_s=30,
            max_queued=1_000_000,
            log_types=("error", "warning", "notice", "information"),
        )
        self.database = VictoriaMetrics(work / "database")
        self.volume: parts.Volume | None = (
            parts.Volume(work / "rsu-1-volume", options.volume_bytes)
            if parts.Volume.possible()
            else None
        )
        self.clock = parts.FakeClock(work / "clock")
        self.torn = parts.TornWrite(work / "torn")
        self.torn_kills: Counter[str] = Counter()  # units killed inside an outbox write
        self.gateways: dict[str, parts.GatewayProcess] = {}
        self.ingests: dict[str, parts.IngestProcess] = {}
        self.outboxes: dict[str, Path] = {}
        self.down: set[str] = set()  # processes down on purpose
        self.exits: list[Exit] = []
        self.kills: Counter[str] = Counter()
        self.done: list[Done] = []
        self.windows: list[LossWindow] = []
        self.departures = Departures()
        self.ongoing: dict[str, Callable[[], object]] = {}  # called every second meanwhile
        self.db_snapshots: list[tuple[float, dict[str, SeqRanges]]] = []
        self.samples: dict[str, Samples] = {}
        self.hostile: HostileClient | None = None
        self._hostile_thread = ThreadPoolExecutor(1, thread_name_prefix="chaos-hostile")
        self.bursts: list[Future[None]] = []
        self.t0 = time.monotonic()
        self.problems: list[str] = []

    # -- set-up --------------------------------------------------------------------------

    def targets(self) -> Targets:
        """The names the plan picks from."""
        return Targets(
            gateways=tuple(u.gateway for u in self.units),
            workers=self.workers,
            disk_gateway="rsu-1" if self.volume is not None else None,
            clock_gateway="rsu-2",
        )

    def elapsed(self) -> float:
        """Seconds since the campaign started."""
        return time.monotonic() - self.t0

    def _setup(self) -> None:
        self.broker.extra_config = parts.broker_auth(self.work / "auth", self.units, self.workers)
        self.broker.start()
        self.database.start()
        self.clock.prepare()
        self.torn.prepare()
        if self.volume is not None:
            self.volume.mount()
        for worker in self.workers:
            home = self.work / "ingest"
            config = parts.ingest_config(home, self.broker.port, self.database.url, worker)
            self.ingests[worker] = parts.IngestProcess(worker, home, config)
        for ingest in self.ingests.values():
            ingest.start()
        for unit in self.units:
            home = self.work / unit.gateway
            outbox = (
                self.volume.path / "outbox.sqlite3"
                if unit.disk and self.volume is not None
                else home / "outbox.sqlite3"
            )
            self.outboxes[unit.gateway] = outbox
            config = parts.gateway_config(unit, home, self.broker.port, outbox)
            clock = self.clock if unit.clock else None
            self.gateways[unit.gateway] = parts.GatewayProcess(unit, home, config, clock, self.torn)
        for unit_proc in self.gateways.values():
            unit_proc.start()
        self.hostile = HostileClient(
            self.broker.port,
            f"{parts.SITE}/{parts.ROGUE}",
            parts.PASSWORD,
            parts.PREFIX,
            parts.SITE,
        )

    def _processes(self) -> dict[str, Process]:
        procs: dict[str, Process] = {"broker": self.broker, "database": self.database}
        procs.update({f"ingest-{w}": p for w, p in self.ingests.items()})
        procs.update(self.gateways)
        return procs

    # -- watching ------------------------------------------------------------------------

    def _watch(self) -> None:
        """Restart a process that exited on its own (and record it)."""
        for name, proc in self._processes().items():
            if name in self.down or proc.running:
                continue
            code = proc.exit_code
            tail = proc.log_text()[-3000:]
            self.exits.append(Exit(name, round(self.elapsed(), 1), code, tail))
            log.error("%s exited on its own (code %s); restarting it", name, code)
            proc.stop()
            try:
                proc.start(wait=False)
            except Exception as exc:  # keep the campaign going; the exit is recorded
                self.problems.append(f"{name} could not be restarted: {exc}")

    def _sample(self) -> None:
        import psutil

        for name, proc in self._processes().items():
            if proc.pid is None or name in self.down:
                continue
            try:
                p = psutil.Process(proc.pid)
                rss = round(p.memory_info().rss / parts.MIB, 1)
                fds = p.num_fds()
            except psutil.Error:
                continue
            self.samples.setdefault(name, Samples()).points.append(
                (round(self.elapsed(), 1), rss, fds, proc.pid)
            )

    # -- loss windows --------------------------------------------------------------------

    def _db_snapshot(self) -> dict[str, SeqRanges]:
        """Each unit's seqs in the database now (the newest snapshot if it is away)."""
        if "database" in self.down or self.database.paused:
            return self.db_snapshots[-1][1] if self.db_snapshots else {}
        at = self.elapsed()
        try:
            stored = read_database(self.database, parts.SITE, timeout=_SNAPSHOT_TIMEOUT_S)
        except OSError as exc:
            log.warning("database export failed (%s): using the newest snapshot", exc)
            return self.db_snapshots[-1][1] if self.db_snapshots else {}
        snapshot = {g: SeqRanges(s.seqs()) for g, s in stored.items()}
        self.db_snapshots = [*self.db_snapshots[-15:], (at, snapshot)]
        return snapshot

    def _db_snapshot_before(self, at_s: float) -> dict[str, SeqRanges]:
        """The newest database snapshot taken at ``at_s`` or earlier (none: nothing)."""
        older = [snap for t, snap in self.db_snapshots if t <= at_s]
        return older[-1] if older else {}

    def _units_now(self) -> dict[str, UnitSnapshot]:
        out = {}
        for name, path in self.outboxes.items():
            record = read_unit(name, path)
            out[name] = UnitSnapshot(record.last_seq, record.waiting)
        self.departures.update(self.elapsed(), out)
        return out

    def _held_since(self, at_s: float) -> float:
        """Since when the broker may hold what it acknowledged before ``at_s``."""
        now = self.elapsed()
        spans = [
            (d.started_s, (d.ended_s if d.ended_s is not None else now) + RECOVERY_S)
            for d in self.done
            if d.fault.kind.startswith(("broker_", "db_")) or d.fault.kind == "ingest_kill"
        ]
        start = at_s - NORMAL_HOLD_S
        moved = True
        while moved:
            moved = False
            for begin, end in spans:
                if begin < start <= end:
                    start, moved = begin, True
        return start

    # -- faults --------------------------------------------------------------------------

    def _begin(self, fault: Fault) -> Callable[[], None] | None:
        """Inject ``fault``; return what ends it (``None``: nothing to undo)."""
        done = Done(fault, self.elapsed())
        self.done.append(done)
        kind = fault.kind
        if kind.startswith("broker_"):
            return self._broker_fault(done)
        if kind.startswith("db_"):
            return self._db_fault(done)
        if kind in ("gateway_kill", "ingest_kill"):
            name = fault.target if kind == "gateway_kill" else f"ingest-{fault.target}"
            proc = self._processes()[name]
            self.down.add(name)
            if fault.torn_write and isinstance(proc, parts.GatewayProcess):
                if proc.kill_mid_write(fault.torn_skip):
                    self.torn_kills[name] += 1
                    done.note = f"kill -9 inside write {fault.torn_skip + 1} to its outbox"
                else:
                    done.note = "no write to its outbox within 5 s: a plain kill -9"
            else:
                proc.kill()
            self.kills[name] += 1

            def restart() -> None:
                proc.start(wait=False)
                self.down.discard(name)
                done.ended_s = self.elapsed()

            return restart
        if kind == "disk_full":
            # Another writer fills the volume and keeps it full: what the outbox frees
            # (a checkpoint, its reserve) is taken again every second until the end.
            assert self.volume is not None
            volume = self.volume
            done.note = f"filler {volume.fill()} bytes"
            self.ongoing["disk_full"] = volume.fill

            def free() -> None:
                self.ongoing.pop("disk_full", None)
                volume.free()
                done.ended_s = self.elapsed()

            return free
        if kind == "clock_step":
            self.clock.set(fault.offset_s)

            def back() -> None:
                self.clock.set(0.0)
                done.ended_s = self.elapsed()

            return back
        self._burst(done)
        return None

    def _burst(self, done: Done) -> None:
        """Send a poison or rogue burst on the hostile client's own thread.

        A burst waits up to 5 s for its PUBACKs (and as long again for the 2 MiB
        message): the play loop goes on meanwhile, so the faults due then are not late.
        """
        assert self.hostile is not None
        hostile, fault = self.hostile, done.fault
        victims = (
            {name: snap.last_seq for name, snap in self._units_now().items()}
            if fault.kind == "rogue"
            else {}
        )

        def send() -> None:
            if fault.kind == "poison":
                sent = hostile.poison(fault.count)
                if fault.count >= 10:
                    sent += hostile.huge()
            else:
                sent = hostile.forge(victims, fault.count)
            answers = Counter(_answer(s) for s in sent)
            done.note = ", ".join(f"{k} {v}" for k, v in answers.items())
            done.ended_s = self.elapsed()

        self.bursts.append(self._hostile_thread.submit(send))

    def _bursts_done(self) -> None:
        """Wait for the hostile bursts still under way (an error in one is raised here)."""
        for burst in self.bursts:
            burst.result()
        self.bursts.clear()

    def _broker_fault(self, done: Done) -> Callable[[], None]:
        fault = done.fault
        done.broker_persistence = self.broker.persistence
        later = bool(fault.persistence)
        if fault.kind == "broker_pause":
            self.broker.pause()

            def thaw() -> None:
                self.broker.resume()
                done.ended_s = self.elapsed()

            return thaw
        # Lossy: a kill (persistence or not: the last autosave is what comes back), a stop
        # without persistence, or a stop whose restart drops the saved state.
        done.lossy = fault.kind == "broker_kill" or not (self.broker.persistence and later)
        before = self._db_snapshot() if done.lossy else {}
        at = self.elapsed()
        self.down.add("broker")
        self.broker.stop(kill=fault.kind == "broker_kill")
        if done.lossy:
            time.sleep(_UNIT_SETTLE_S)
            now, then = _on_off(self.broker.persistence), _on_off(later)
            label = f"{fault.kind}@{done.started_s:.0f}s(persistence {now}, back {then})"
            window = LossWindow(label, at, self._held_since(at), before, self._units_now())
            self.windows.append(window)

        def back() -> None:
            if later and not self.broker.persistence:
                shutil.rmtree(self.broker.store, ignore_errors=True)  # not a stale old file
            self.broker.persistence = later
            self.broker.start()
            self.down.discard("broker")
            done.ended_s = self.elapsed()

        return back

    def _db_fault(self, done: Done) -> Callable[[], None]:
        fault = done.fault
        if fault.kind == "db_pause":
            self.database.pause()

            def thaw() -> None:
                self.database.resume()
                done.ended_s = self.elapsed()

            return thaw
        self.down.add("database")
        if fault.kind == "db_kill":
            # Debian's VictoriaMetrics loses the rows of its last seconds on SIGKILL,
            # acknowledged (204) and even flushed: what it held DB_KILL_LOSES_S before.
            done.lossy = True
            at = self.elapsed()
            before = self._db_snapshot_before(at - DB_KILL_LOSES_S)
            self.database.kill()
            time.sleep(_DB_SETTLE_S)
            earliest = self._held_since(at - DB_KILL_LOSES_S)
            window = LossWindow(f"db_kill@{at:.0f}s", at, earliest, before, self._units_now())
            self.windows.append(window)
        else:
            self.database.stop()

        def back() -> None:
            self.database.start()
            self.down.discard("database")
            done.ended_s = self.elapsed()

        return back

    # -- the run -------------------------------------------------------------------------

    def _play(self, faults: list[Fault]) -> None:
        """Play ``faults`` at their times; each holds for its length from when it began.

        This loop is one thread (hostile bursts have their own): a slow database
        export or a slow kill delays what is due meanwhile. A late fault still holds for its
        planned length, and one due while another of its timeline is in force waits for
        it (a broker is never killed while it is paused).
        """
        order = itertools.count()
        # (due, order, fault, undo): a fault to begin (undo None) or one to end
        queue: list[tuple[float, int, Fault, Callable[[], None] | None]] = []
        for fault in faults:
            heapq.heappush(queue, (fault.at_s, next(order), fault, None))
        in_force: set[str] = set()  # timelines with a fault in force
        next_sample = next_units = next_db = 0.0
        end = self.o.seconds
        while self.elapsed() < end or queue:
            now = self.elapsed()
            while queue and queue[0][0] <= now:
                _due, _n, fault, undo = heapq.heappop(queue)
                line = timeline_of(fault.kind)
                if undo is not None:
                    undo()
                    in_force.discard(line)
                    continue
                if line in in_force:
                    heapq.heappush(queue, (now + _TICK_S, next(order), fault, None))
                    continue
                log.info("fault %s on %s at %.1f s", fault.kind, fault.target, now)
                undo = self._begin(fault)
                if undo is not None:
                    in_force.add(line)
                    until = self.elapsed() + fault.end_s - fault.at_s
                    heapq.heappush(queue, (until, next(order), fault, undo))
            self._watch()
            if now >= next_units:
                self._units_now()
                for keep_going in list(self.ongoing.values()):
                    keep_going()
                next_units = now + _UNITS_EVERY_S
            if now >= next_db:
                self._db_snapshot()
                next_db = now + _DB_EVERY_S
            if now >= next_sample:
                self._sample()
                next_sample = now + _SAMPLE_EVERY_S
            time.sleep(_TICK_S)

    def _restore(self) -> None:
        """Everything up and whole (nothing should need it: the plan's faults are over)."""
        self.clock.set(0.0)
        if self.volume is not None:
            self.volume.free()
        for server in (self.broker, self.database):
            server.resume()
            if not server.running:
                server.start()
        for name, proc in self._processes().items():
            if not proc.running:
                self.problems.append(f"{name} was not running after the last fault")
                proc.start(wait=False)
        self.down.clear()

    def _drain(self) -> None:
        """Wait until what the units produced before the drain has left their outboxes."""
        marks = {name: snap.last_seq for name, snap in self._units_now().items()}
        deadline = time.monotonic() + self.o.drain_timeout_s
        while time.monotonic() < deadline:
            self._watch()
            units = self._units_now()
            if all(not {s for s in u.waiting if s <= marks[n]} for n, u in units.items()):
                return
            time.sleep(1.0)
        waiting = {n: len(u.waiting) for n, u in self._units_now().items()}
        self.problems.append(
            f"outboxes not drained after {self.o.drain_timeout_s:.0f} s: {waiting}"
        )

    def _settle(self, units: dict[str, Any]) -> dict[str, Stored]:
        """Poll the database until each unit's events are accounted for or nothing changes."""
        letters_path = self.work / "ingest" / "ingest-deadletters.sqlite3"
        last, changed = -1, time.monotonic()
        while True:
            stored = read_database(self.database, parts.SITE)
            letters = read_letters(letters_path)
            results = [self._reconcile(n, u, stored, letters) for n, u in units.items()]
            count = sum(r.stored + r.dead_lettered for r in results)
            if all(r.unexplained == 0 for r in results):
                return stored
            if count != last:
                last, changed = count, time.monotonic()
            elif time.monotonic() - changed > 30:
                return stored
            self._watch()
            time.sleep(2.0)

    def _reconcile(
        self, name: str, unit: Any, stored: dict[str, Stored], letters: list[Any]
    ) -> UnitResult:
        return reconcile_unit(
            unit,
            stored.get(name, Stored()),
            letters=letters,
            windows=self.windows,
            departures=self.departures,
            unit_topic=_topic(name),
        )

    def run(self) -> dict[str, Any]:
        """The whole campaign; returns the result (see :func:`summary`)."""
        load_before = os.getloadavg()
        faults = plan(self.o.seconds, self.o.seed, self.targets(), warmup_s=self.o.warmup_s)
        try:
            self._setup()
            self.t0 = time.monotonic()
            self._play(faults)
            self._bursts_done()
            self._restore()
            self._drain()
            codes = {}
            for name, proc in self.gateways.items():
                self.down.add(name)
                codes[name] = proc.stop(timeout=30)
            units = {n: read_unit(n, p) for n, p in self.outboxes.items()}
            self.problems += _recoveries(units.values())
            self.departures.update(
                self.elapsed(), {n: UnitSnapshot(u.last_seq, u.waiting) for n, u in units.items()}
            )
            stored = self._settle(units)
            letters = read_letters(self.work / "ingest" / "ingest-deadletters.sqlite3")
            for name, worker in self.ingests.items():
                self.down.add(f"ingest-{name}")
                codes[f"ingest-{name}"] = worker.stop(timeout=30)
            results = [self._reconcile(n, u, stored, letters) for n, u in units.items()]
            return self.summary(results, letters, codes, faults, load_before)
        finally:
            self._teardown()

    def _teardown(self) -> None:
        self._hostile_thread.shutdown(wait=True, cancel_futures=True)
        for proc in [*self.gateways.values(), *self.ingests.values()]:
            proc.stop(timeout=10)
        for server in (self.broker, self.database):
            server.stop()
        if self.volume is not None:
            self.volume.unmount()

    # -- the result ----------------------------------------------------------------------

    def summary(
        self,
        results: list[UnitResult],
        letters: list[Any],
        codes: dict[str, int | None],
        faults: list[Fault],
        load_before: tuple[float, float, float],
    ) -> dict[str, Any]:
        """The figures: units, faults, hostile traffic, processes, resources, verdict."""
        problems = list(self.problems)
        for r in results:
            if r.unexplained:
                problems.append(f"{r.gateway}: {r.unexplained} missing events UNEXPLAINED")
            if r.reused:
                problems.append(f"{r.gateway}: seqs stored with two event times: {r.reused[:5]}")
            if r.beyond_last_seq:
                problems.append(
                    f"{r.gateway}: stored seqs it never produced: {r.beyond_last_seq[:5]}"
                )
        for ex in self.exits:
            problems.append(f"{ex.name} exited on its own at {ex.at_s} s (code {ex.code})")
        for name, code in codes.items():
            if code not in (0, None):
                problems.append(f"{name} exited with code {code} on SIGTERM")
        hostile = self._hostile_summary(letters)
        problems += hostile.pop("problems")
        played = Counter(d.fault.kind for d in self.done)
        missing_kinds = sorted({f.kind for f in faults} - set(played))
        if missing_kinds:
            problems.append(f"faults planned but not played: {missing_kinds}")
        totals = Counter[str]()
        for r in results:
            totals.update(
                produced=r.produced,
                stored=r.stored,
                dead_lettered=r.dead_lettered,
                waiting_in_outbox=r.waiting,
                duplicates=r.duplicates,
                missing=r.missing,
                unexplained=r.unexplained,
            )
        return {
            "benchmark": "chaos",
            "seed": self.o.seed,
            "seconds": self.o.seconds,
            "rate_per_unit": self.o.rate,
            "load_1_5_15_before": [round(x, 2) for x in load_before],
            "load_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "disk_fault": self.volume is not None,
            "faults_played": dict(sorted(played.items())),
            "faults": [d.as_dict() for d in self.done],
            "loss_windows": [w.label for w in self.windows],
            "totals": dict(totals),
            "units": [r.as_dict() for r in results],
            "hostile": hostile,
            "processes": {
                "killed_on_purpose": dict(self.kills),
                "killed_inside_an_outbox_write": dict(self.torn_kills),
                "unexpected_exits": [asdict(e) for e in self.exits],
                "exit_codes_at_stop": codes,
            },
            "ingest_stats_at_stop": {w: _stats(p) for w, p in self.ingests.items()},
            "resources": {name: s.summary() for name, s in sorted(self.samples.items())},
            "problems": problems,
            "ok": not problems,
        }

    def _hostile_summary(self, letters: list[Any]) -> dict[str, Any]:
        sent: list[Sent] = self.hostile.sent if self.hostile is not None else []
        topics = {x.topic for x in letters}
        poison = [s for s in sent if s.kind not in ("forged_event", "forged_command",
                                                    "over_packet_limit")]  # fmt: skip
        acked = [s for s in poison if s.reason == 0]
        lost = [s for s in acked if s.topic not in topics]
        lossy_at = [d.started_s for d in self.done if d.lossy and d.fault.target == "broker"]
        start_wall = time.time() - self.elapsed()
        unexplained = [
            s for s in lost if not any(0 <= t - (s.at - start_wall) <= 60 for t in lossy_at)
        ]
        forged = [s for s in sent if s.kind.startswith("forged")]
        problems = []
        if unexplained:
            problems.append(
                f"{len(unexplained)} poison messages acknowledged by the broker have no dead "
                f"letter: {[s.topic for s in unexplained[:5]]}"
            )
        accepted = [s for s in forged if s.reason is not None and s.reason < 128]
        if accepted:
            problems.append(f"the broker accepted {len(accepted)} forged publishes (ACL hole)")
        return {
            "poison_sent": len(poison),
            "poison_acknowledged": len(acked),
            "poison_dead_lettered": len(acked) - len(lost),
            "poison_lost_in_broker_faults": len(lost) - len(unexplained),
            "poison_kinds": dict(Counter(s.kind for s in acked)),
            "dead_letter_reasons": dict(Counter(x.reason for x in letters)),
            "forged_sent": len(forged),
            "forged_answers": dict(Counter(_answer(s) for s in forged)),
            "over_packet_limit_answers": dict(
                Counter(_answer(s) for s in sent if s.kind == "over_packet_limit")
            ),
            "problems": problems,
        }


def _recoveries(units: Iterable[UnitRecord]) -> list[str]:
    """A unit whose outbox was recovered as damaged or rolled back: never by ``kill -9``.

    The campaign cuts no power: in WAL mode a kill, even inside a write, leaves the
    database whole, so a recovery (which writes seqs off) is a defect, not a loss.
    """
    return [
        f"{unit.gateway}: its outbox was recovered ({loss.cause}, seqs {loss.first}..{loss.last})"
        for unit in units
        for loss in unit.losses
        if loss.cause in ("damaged", "rolled_back")
    ]


def _stats(proc: Process) -> dict[str, Any] | None:
    """The counters a worker logged when it stopped last (``stopped: {...}``)."""
    lines = [x for x in proc.log_text().splitlines() if " stopped: {" in x]
    if not lines:
        return None
    try:
        found = json.loads(lines[-1].split(" stopped: ", 1)[1])
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _on_off(flag: bool) -> str:
    return "on" if flag else "off"


def _answer(sent: Sent) -> str:
    return "no answer" if sent.reason is None else f"reason {sent.reason}"


def _topic(gateway: str) -> str:
    return f"{parts.PREFIX}/{parts.SITE}/{gateway}/"
