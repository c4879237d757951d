"""``gateway models list|pull|import|verify|remove``: the on-device model store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from gateway.commands.common import config_option, json_option, print_json
from gateway.config import load_settings
from gateway.errors import UsageError
from gateway.modelstore.catalog import CatalogEntry, load_catalog
from gateway.modelstore.store import ModelStore

F = TypeVar("F", bound=Callable[..., Any])
MODEL_TYPES = click.Choice(["auto", "yolox", "yolo", "ssd"])


@click.group("models")
@config_option()
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GATEWAY_MODEL_DIR",
    help="Model store directory (default: gateway.model_dir, else <data_dir>/models).",
)
@click.option(
    "--catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this catalog file instead of the shipped one.",
)
@click.pass_context
def models_group(
    ctx: click.Context, config_path: Path | None, model_dir: Path | None, catalog: Path | None
) -> None:
    """List, download, import and verify detection models.

    --config, --model-dir and --catalog go before or after the subcommand
    (`gateway models pull NAME --model-dir DIR` = `gateway models --model-dir DIR pull NAME`).
    """
    ctx.obj = {"config": config_path, "model_dir": model_dir, "catalog": catalog}


def register(app: click.Group) -> None:
    """Add the ``models`` group to the root app."""
    app.add_command(models_group)


def _remember(ctx: click.Context, param: click.Parameter, value: object) -> None:
    """A subcommand's --config/--model-dir/--catalog overrides the group's."""
    if value is not None and param.name is not None:
        obj = ctx.find_object(dict)
        if obj is not None:
            obj[param.name] = value


def _location(command: F) -> F:
    """The group's location options, accepted after the subcommand too."""
    options = (
        click.option(
            "--config", "-c", "config",
            type=click.Path(dir_okay=False, path_type=Path), expose_value=False,
            callback=_remember, help="Config file (TOML), as before the subcommand.",
        ),
        click.option(
            "--model-dir", "model_dir",
            type=click.Path(file_okay=False, path_type=Path), expose_value=False,
            callback=_remember, help="Model store directory, as before the subcommand.",
        ),
        click.option(
            "--catalog", "catalog",
            type=click.Path(dir_okay=False, path_type=Path), expose_value=False,
            callback=_remember, help="Catalog file, as before the subcommand.",
        ),
    )  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def _ctx() -> tuple[ModelStore, dict[str, CatalogEntry]]:
    obj: dict[str, Any] = click.get_current_context().find_object(dict) or {}
    model_dir = obj.get("model_dir") or load_settings(obj.get("config")).model_dir
    return ModelStore(model_dir), load_catalog(obj.get("catalog"))


@models_group.command("list")
@_location
@json_option
def list_models(as_json: bool) -> None:
    """Show the catalog and what is installed."""
    store, catalog = _ctx()
    installed = {m.name: m for m in store.models()}
    rows: list[dict[str, Any]] = []
    for name in sorted(set(catalog) | set(installed)):
        entry = catalog.get(name)
        model = installed.get(name)
        rows.append(
            {
                "name": name,
                "installed": model is not None,
                "model_type": (model.model_type if model else None)
                or (entry.model_type if entry else "auto"),
                "size": model.size if model else (entry.size if entry else None),
                "sha256": model.sha256 if model else (entry.sha256 if entry else None),
                "license": entry.license if entry else "",
                "source": model.source if model else (entry.source if entry else ""),
                "notes": entry.notes if entry else f"imported from {model.origin}" if model else "",
            }
        )
    if as_json:
        print_json({"store": str(store.root), "models": rows})
        return
    table = Table(title=f"models (store: {store.root})")
    for column in ("name", "installed", "type", "size", "license", "how to get it"):
        table.add_column(column)
    for row in rows:
        size = f"{row['size'] / 1e6:.1f} MB" if row["size"] else "?"
        how = {"onnx": "gateway models pull", "export": "export to ONNX, then import"}.get(
            str(row["source"]), str(row["source"])
        )
        table.add_row(
            row["name"],
            "yes" if row["installed"] else "",
            str(row["model_type"]),
            size,
            row["license"],
            how,
        )
    Console().print(table)


@models_group.command("pull")
@_location
@click.argument("name")
@click.option("--url", help="Download from this mirror instead of the catalog's URL.")
@click.option("--sha256", "sha256", help="Expected checksum (required for unpinned entries).")
@click.option(
    "--trust-unpinned", is_flag=True, help="Accept an unpinned download and record its checksum."
)
@json_option
def pull(
    name: str, url: str | None, sha256: str | None, trust_unpinned: bool, as_json: bool
) -> None:
    """Download NAME from the catalog, verify its checksum and store it."""
    store, catalog = _ctx()
    entry = catalog.get(name)
    if entry is None:
        raise UsageError(f"unknown model {name!r}; known: {', '.join(sorted(catalog))}")
    model = store.pull(entry, url=url, sha256=sha256, trust_unpinned=trust_unpinned)
    if as_json:
        print_json(model.as_dict())
    else:
        click.echo(f"stored {model.name}: {model.path} ({model.size} bytes, sha256 {model.sha256})")


@models_group.command("import")
@_location
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Name to store the model under.")
@click.option("--type", "model_type", type=MODEL_TYPES, default="auto", show_default=True)
@click.option("--labels", type=click.Path(path_type=Path), help="Label file, one name per line.")
@json_option
def import_model(
    file: Path, name: str, model_type: str, labels: Path | None, as_json: bool
) -> None:
    """Copy a local model FILE (e.g. from a USB stick) into the store and record its checksum."""
    store, catalog = _ctx()
    model = store.import_file(file, name, model_type=model_type, labels_file=labels)
    pinned = {e.sha256: e.name for e in catalog.values() if e.sha256}
    known_as = pinned.get(model.sha256)
    if as_json:
        print_json({**model.as_dict(), "catalog_match": known_as})
    else:
        click.echo(f"stored {model.name}: {model.path} ({model.size} bytes, sha256 {model.sha256})")
        if known_as:
            click.echo(f"checksum matches the catalog's {known_as}")


@models_group.command("verify")
@_location
@json_option
def verify(as_json: bool) -> None:
    """Re-check every stored model against its recorded checksum (exit 1 on any failure)."""
    store, _ = _ctx()
    results = store.verify()
    if as_json:
        print_json([{"name": r.name, "ok": r.ok, "detail": r.detail} for r in results])
    else:
        for r in results:
            click.echo(f"{'ok  ' if r.ok else 'FAIL'} {r.name}: {r.detail}")
        if not results:
            click.echo(f"no models in {store.root}")
    if not all(r.ok for r in results):
        raise click.exceptions.Exit(1)


@models_group.command("remove")
@_location
@click.argument("name")
def remove(name: str) -> None:
    """Delete NAME from the store."""
    store, _ = _ctx()
    store.remove(name)
    click.echo(f"removed {name}")
