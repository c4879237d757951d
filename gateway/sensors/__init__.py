"""Serial sensors: protocol decoders, their registry and records (readers: gateway.serialports)."""
