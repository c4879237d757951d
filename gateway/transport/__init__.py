"""Event transport: the SQLite store-and-forward outbox and the MQTT link."""
