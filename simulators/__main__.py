"""``python -m simulators <name>``: run a simulator (sensor, board, camera, fleet)."""

from __future__ import annotations

import importlib
import sys

import click

# The explicit registry: simulator name -> "module:click command attribute".
SIMULATORS: dict[str, str] = {
    "sensor": "simulators.sensors.cli:command",
    "board": "simulators.board.cli:command",
    "camera": "simulators.camera.cli:command",
    "fleet": "simulators.fleet.cli:command",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SIMULATORS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SIMULATORS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Simulated devices for tests and demos (no hardware needed)."""


if __name__ == "__main__":
    sys.exit(main())
