"""FIWARE Smart Data Models export: events as NGSI-LD entities (``docs/ngsi.md``)."""
