"""Roadside sensor bridge (RSB): the serial protocol between the gateway and sensor boards.

Pure functions over bytes (``cobs``, ``crc``, ``messages``, ``codec``, ``framer``) and
the reliable link (``link``). A standalone package: it imports nothing of the gateway or
the simulators. The gateway's ``rsb`` sensor protocol (:mod:`gateway.sensors.rsb`) and
``gateway bench bridge`` (:mod:`gateway.bench.bridge`) are built on it.
"""
