"""The JSON Schema files of the event format (package data, one file per version)."""
