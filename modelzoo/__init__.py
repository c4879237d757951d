"""The demo detector shipped with the gateway (``demo/``) and the script that trained it."""
