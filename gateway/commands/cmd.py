"""``gateway cmd``: sign a command with the operator's key, send it, print the reply."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click

from gateway.commands.common import config_option
from gateway.errors import UsageError


def register(app: click.Group) -> None:
    """Add the ``cmd`` command to the root app."""
    app.add_command(cmd)


def _read_patch(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read patch file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}"
        ) from exc
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path}: the patch must be a non-empty object")
    return data


@click.command("cmd")
@config_option()
@click.option("--site", required=True, help="The unit's site.")
@click.option("--unit", required=True, help="The unit's gateway id.")
@click.argument("name")
@click.option(
    "--patch",
    "patch_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="set_config: a JSON merge patch (.json) or a TOML fragment (.toml).",
)
@click.option("--camera", help="snapshot / restart_pipeline: the camera id.")
@click.option(
    "--operators",
    "operators_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="set_trust: the PEM file of operator certificates (gateway pki operators).",
)
@click.option("--host", help="Broker host (default: [mqtt] host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Broker port (default: [mqtt] port).")
@click.option("--ca", "ca_file", type=click.Path(dir_okay=False, path_type=Path), help="Fleet CA.")
@click.option(
    "--cert", "cert_file", type=click.Path(dir_okay=False, path_type=Path), help="Operator cert."
)
@click.option(
    "--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), help="Operator key."
)
@click.option("--prefix", help="Topic prefix (default: [mqtt] topic_prefix).")
@click.option("--timeout", type=click.FloatRange(1, 600), default=30.0, show_default=True)
def cmd(
    *,
    config_path: Path | None,
    site: str,
    unit: str,
    name: str,
    patch_file: Path | None,
    camera: str | None,
    operators_file: Path | None,
    host: str | None,
    port: int | None,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    prefix: str | None,
    timeout: float,
) -> int:
    """Send command NAME to unit --unit at --site, signed with the operator's key.

    The broker connection and the operator's certificate and key come from the
    config's [mqtt] section (and [mqtt.tls]) or the options. Prints the unit's reply
    (JSON); exit code 0 when the unit carried the command out, 1 otherwise.
    """
    from gateway.config.settings import load_settings
    from gateway.config.transport import MqttConfig, TlsConfig
    from gateway.security.remote import OperatorKey, send_command

    mqtt = load_settings(config_path).mqtt if config_path else MqttConfig()
    tls = mqtt.tls or TlsConfig()
    tls = tls.model_copy(
        update={
            k: v
            for k, v in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file))
            if v is not None
        }
    )
    if tls.cert_file is None or tls.key_file is None:
        raise UsageError("give the operator's --cert and --key (or [mqtt.tls] in --config)")
    update: dict[str, Any] = {"tls": tls}
    if host:
        update["host"] = host
    if port:
        update["port"] = port
    if prefix:
        update["topic_prefix"] = prefix
    mqtt = mqtt.model_copy(update=update)
    args: dict[str, Any] = {}
    if patch_file is not None:
        args["patch"] = _read_patch(patch_file)
    if camera is not None:
        args["camera"] = camera
    if operators_file is not None:
        try:
            args["operators"] = operators_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {operators_file}: {exc}") from exc
    operator = OperatorKey.load(tls.cert_file, tls.key_file)
    reply = send_command(
        mqtt, operator, site=site, unit=unit, name=name, args=args, timeout_s=timeout
    )
    click.echo(json.dumps(reply, indent=2, ensure_ascii=False))
    return 0 if reply.get("ok") is True else 1
