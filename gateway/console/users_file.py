"""Setting a console user's password hash in the config file, keeping the file as it was.

``gateway console passwd`` edits one table, ``[console.users.<name>]``: it replaces
that table's ``password_hash`` (and ``role``) lines, or appends the table at the end
of the file, so the crew's comments and layout stay. When the file spells the users
another way (inline tables, dotted keys) the whole file is rendered again instead
(comments are lost then; the command says so). Either way the new text must read back
as exactly the intended settings and validate before it replaces the file, atomically.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.atomicfile import write_atomically
from gateway.config.console import ConsoleRole
from gateway.config.patch import to_toml
from gateway.config.settings import read_toml, validate_settings

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


@dataclass(frozen=True, slots=True)
class UserWritten:
    """What :func:`set_user` did."""

    user: str
    role: ConsoleRole
    created: bool
    kept_layout: bool
    console_enabled: bool


def set_user(path: Path, user: str, password_hash: str, role: ConsoleRole | None) -> UserWritten:
    """Write ``user``'s hash (and role; an existing user keeps theirs when ``None``)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    data = read_toml(path) if path.exists() else {}
    console = data.get("console", {})
    users = console.get("users", {}) if isinstance(console, dict) else {}
    existing = users.get(user) if isinstance(users, dict) else None
    created = not isinstance(existing, dict)
    old_role = existing.get("role", "admin") if isinstance(existing, dict) else "admin"
    new_role: ConsoleRole = role or ("read-only" if old_role == "read-only" else "admin")
    wanted = copy.deepcopy(data)
    table = wanted.setdefault("console", {}).setdefault("users", {}).setdefault(user, {})
    table["role"] = new_role
    table["password_hash"] = password_hash
    validate_settings(wanted, str(path))  # ConfigError with the field paths: nothing written
    new_text = _edited(text, user, new_role, password_hash)
    kept = new_text is not None and _reads_as(new_text, wanted)
    if not kept:
        new_text = to_toml(wanted)
    assert new_text is not None
    if not _reads_as(new_text, wanted):  # pragma: no cover - to_toml reads back
        raise ValueError("the new config would not read back as written")
    write_atomically(path, new_text)
    enabled = bool(wanted.get("console", {}).get("enabled", False))
    return UserWritten(user, new_role, created, kept, enabled)


def _reads_as(text: str, wanted: dict[str, Any]) -> bool:
    try:
        return tomllib.loads(text) == wanted
    except tomllib.TOMLDecodeError:
        return False


def _edited(text: str, user: str, role: str, password_hash: str) -> str | None:
    """``text`` with the user's table changed in place or appended; ``None`` if unsure."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _is_table(line, user)), None)
    values = {"role": json.dumps(role), "password_hash": json.dumps(password_hash)}
    if start is None:
        tail = "" if not text or text.endswith("\n") else "\n"
        block = f"\n[console.users.{_key(user)}]\n" + "".join(
            f"{k} = {v}\n" for k, v in values.items()
        )
        return text + tail + block
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    body = lines[start + 1 : end]
    for key, value in values.items():
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        at = next((i for i, line in enumerate(body) if pattern.match(line)), None)
        if at is None:
            body.insert(0, f"{key} = {value}\n")
        else:
            body[at] = f"{key} = {value}\n"
    return "".join([*lines[: start + 1], *body, *lines[end:]])


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _is_table(line: str, user: str) -> bool:
    match = _HEADER.match(line)
    if match is None:
        return False
    parts = [p.strip().strip('"').strip("'") for p in match.group(1).split(".")]
    return parts == ["console", "users", user]
