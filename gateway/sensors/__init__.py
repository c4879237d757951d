"""Serial sensors: ports, protocol decoders and readers."""
