"""The model store: pull from a local HTTP server, import, verify, and every way it can fail."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import main


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "not here")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.truncate:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {"files": {}, "truncate": set()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()
    thread.join()


def _catalog(tmp_path: Path, base: str, sha: str | None, size: int | None = None) -> Path:
    lines = [
        "[nano]",
        f'url = "{base}/nano.onnx"',
        'model_type = "yolox"',
        "input_size = 416",
        'license = "Apache-2.0"',
    ]
    if sha:
        lines.append(f'sha256 = "{sha}"')
    if size:
        lines.append(f"size = {size}")
    path = tmp_path / "catalog.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _models(store: Path, catalog: Path | None, *args: str) -> int:
    extra = ["--catalog", str(catalog)] if catalog else []
    return main(["models", "--model-dir", str(store), *extra, *args])


def test_pull_verifies_and_stores(
    tmp_path: Path,
    yolox_nano: Path,
    http_server: tuple[str, type[_Handler]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, handler = http_server
    body = yolox_nano.read_bytes()
    handler.files["/nano.onnx"] = body
    sha = hashlib.sha256(body).hexdigest()
    catalog = _catalog(tmp_path, base, sha, len(body))
    store = tmp_path / "store"
    assert _models(store, catalog, "pull", "nano", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sha256"] == sha
    assert (store / "nano" / "model.onnx").read_bytes() == body
    assert _models(store, catalog, "verify") == 0
    assert "ok" in capsys.readouterr().out
    assert _models(store, catalog, "list", "--json") == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed["nano"]["installed"] is True


def test_bad_downloads_never_replace_a_good_model(
    tmp_path: Path,
    yolox_nano: Path,
    http_server: tuple[str, type[_Handler]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, handler = http_server
    good = yolox_nano.read_bytes()
    sha = hashlib.sha256(good).hexdigest()
    store = tmp_path / "store"
    handler.files["/nano.onnx"] = good
    assert _models(store, _catalog(tmp_path, base, sha), "pull", "nano") == 0
    capsys.readouterr()

    # corrupt body: checksum mismatch
    handler.files["/nano.onnx"] = good[:-10] + b"0123456789"
    assert _models(store, _catalog(tmp_path, base, sha), "pull", "nano") == 1
    assert "checksum mismatch" in capsys.readouterr().err
    # truncated transfer
    handler.files["/nano.onnx"] = good
    handler.truncate.add("/nano.onnx")
    assert _models(store, _catalog(tmp_path, base, sha), "pull", "nano") == 1
    err = capsys.readouterr().err
    assert "truncated" in err or "download failed" in err
    handler.truncate.clear()
    # missing on the server
    del handler.files["/nano.onnx"]
    assert _models(store, _catalog(tmp_path, base, sha), "pull", "nano") == 1
    assert "HTTP 404" in capsys.readouterr().err

    assert (store / "nano" / "model.onnx").read_bytes() == good
    assert _models(store, None, "verify") == 0
    assert not list((store / ".staging").iterdir()), "staging must be cleaned up"


def test_unpinned_entry_needs_a_checksum(
    tmp_path: Path, http_server: tuple[str, type[_Handler]], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = http_server
    assert _models(tmp_path / "s", _catalog(tmp_path, base, None), "pull", "nano") == 2
    assert "no pinned checksum" in capsys.readouterr().err


def test_unknown_and_export_only_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _models(tmp_path / "s", None, "pull", "no_such_model") == 2
    assert "unknown model" in capsys.readouterr().err
    assert _models(tmp_path / "s", None, "pull", "yolov8n") == 2
    assert "export" in capsys.readouterr().err


def test_import_from_usb_and_verify_detects_tampering(
    tmp_path: Path, yolox_nano: Path, coco_labels: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    assert (
        _models(
            store, None, "import", str(yolox_nano), "--name", "road", "--labels", str(coco_labels)
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "matches the catalog's yolox_nano" in out
    from gateway.modelstore.store import ModelStore

    model = ModelStore(store).get("road")
    assert model.labels is not None and len(model.labels) == 80
    assert model.sha256 == hashlib.sha256(yolox_nano.read_bytes()).hexdigest()

    with (store / "road" / "model.onnx").open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    assert _models(store, None, "verify") == 1
    assert "checksum mismatch" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"this is not a model", "not a loadable ONNX model"),
    ],
)
def test_import_rejects_corrupt_files(
    tmp_path: Path, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    assert _models(tmp_path / "store", None, "import", str(bad), "--name", "bad") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "store" / "bad").exists()


def test_import_missing_file_and_bad_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _models(tmp_path / "s", None, "import", str(tmp_path / "nope.onnx"), "--name", "x") == 2
    assert "not found" in capsys.readouterr().err
    assert _models(tmp_path / "s", None, "import", str(tmp_path), "--name", "../evil") == 2
    assert "invalid model name" in capsys.readouterr().err


def test_unwritable_store(
    tmp_path: Path, yolox_nano: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the store's parent directory should be")
    assert _models(blocker / "models", None, "import", str(yolox_nano), "--name", "x") == 1
    assert "is not writable" in capsys.readouterr().err
