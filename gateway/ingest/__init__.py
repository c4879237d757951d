"""Central ingest: MQTT v5 shared subscription -> InfluxDB points, nothing lost.

Modules, one job each:

- :mod:`~gateway.ingest.points`: the :class:`Point` type, point time and line protocol.
- :mod:`~gateway.ingest.mapping`: event type -> points (the documented mapping).
- :mod:`~gateway.ingest.decode`: payload -> checked event, or a dead-letter reason.
- :mod:`~gateway.ingest.deadletter`: the dead-letter message body.
- :mod:`~gateway.ingest.acks`: MQTT acknowledgements released in order, only when done.
- :mod:`~gateway.ingest.spool`: the SQLite spool used while the database is away.
- :mod:`~gateway.ingest.database`: batched writes with retries and back-off.
- :mod:`~gateway.ingest.stats`: the counters.
- :mod:`~gateway.ingest.worker`: the wiring (paho client, batching thread).
"""
