"""A simulated sensor board speaking the RSB protocol (see ``firmware_bridge/SPEC.md``)."""
