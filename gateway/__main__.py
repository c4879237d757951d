"""``python -m gateway`` runs the CLI."""

import sys

from gateway.cli import entry

sys.exit(entry())
