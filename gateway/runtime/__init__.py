"""Runtime pieces of ``gateway run``: health, commands, config patches, systemd notify."""
