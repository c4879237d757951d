"""``gateway bench chaos``: a fault campaign that keeps looking for lost events.

Units (``gateway run``), Mosquitto, two ``gateway ingest`` workers and VictoriaMetrics
run on loopback while faults are injected on a random schedule from a seed
(:mod:`~gateway.bench.chaos.plan`); at the end every event the units produced is
reconciled against the database and the dead-letter store
(:mod:`~gateway.bench.chaos.reconcile`). See ``docs/reliability.md``.
"""
