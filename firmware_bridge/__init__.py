"""Roadside sensor bridge (RSB): the serial protocol between the gateway and sensor boards.

Pure functions over bytes (``cobs``, ``crc``, ``messages``, ``codec``, ``framer``),
the reliable link (``link``) and the gateway-side decoder (``decoder``).
"""
