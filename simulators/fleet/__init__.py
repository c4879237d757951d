"""A fleet of virtual gateways publishing realistic event streams (for ingest load tests)."""
