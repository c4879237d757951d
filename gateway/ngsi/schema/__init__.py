"""JSON Schemas of the NGSI-LD entities the export produces (package data)."""
