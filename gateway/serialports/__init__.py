"""Serial ports at run time: one reader thread per port (open, read, re-open) and Modbus polling.

The protocol decoders and their registry (:mod:`gateway.sensors`) sit below the config,
which validates a sensor's options with its decoder; the readers here take a validated
:class:`~gateway.config.sensors.SensorConfig`, so they sit above it.
"""
