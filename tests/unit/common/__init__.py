"""Unit tests of the gateway's small top-level modules.

Back-off, interrupts, rate-limited logs, redaction, native stderr capture.
"""
