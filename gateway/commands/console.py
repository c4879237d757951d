"""``gateway console passwd``: set a console login's password (its hash goes into the config)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gateway.commands.common import config_option


def register(app: click.Group) -> None:
    """Add the ``console`` group to the root app."""
    app.add_command(console)


@click.group("console")
def console() -> None:
    """The crew console: a local web page of the running gateway (see docs/console.md)."""


@console.command("passwd")
@config_option(required=True)
@click.option(
    "--user", default="admin", show_default=True, help="Login name (letters, digits, _ . -)."
)
@click.option(
    "--role",
    type=click.Choice(["admin", "read-only"]),
    default=None,
    help="admin may change settings, read-only may only look "
    "(default: admin for a new user, unchanged for an existing one).",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (scripts), not a prompt.",
)
def passwd(config_path: Path, user: str, role: str | None, password_stdin: bool) -> None:
    """Set USER's console password: its scrypt hash is written into [console.users.USER].

    The password itself is never stored or printed. The file keeps its comments; it is
    replaced atomically. The running gateway uses the new password after a restart.
    """
    from gateway.config.console import USER_NAME
    from gateway.console.passwords import hash_password, weak_password
    from gateway.console.users_file import set_user
    from gateway.errors import InputError

    if not USER_NAME.match(user):
        raise InputError(f"bad user name {user!r}: use 1 to 32 letters, digits, '_', '.' or '-'")
    if not config_path.exists():
        raise InputError(f"config file not found: {config_path}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            f"new console password for {user}",
            hide_input=True,
            confirmation_prompt="repeat it",
            err=True,
        )
    problem = weak_password(password)
    if problem is not None:
        raise InputError(f"password refused: {problem}")
    written = set_user(
        config_path,
        user,
        hash_password(password),
        "read-only" if role == "read-only" else ("admin" if role == "admin" else None),
    )
    verb = "added" if written.created else "changed the password of"
    click.echo(f"{verb} console user {written.user} ({written.role}) in {config_path}")
    if not written.kept_layout:
        click.echo("note: the file was rewritten in full (its comments are gone)", err=True)
    if not written.console_enabled:
        click.echo("the console is off: set [console] enabled = true to serve it", err=True)
    click.echo("restart the gateway to use it (systemctl restart roadside-gateway)", err=True)
