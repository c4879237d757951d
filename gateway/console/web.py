"""The console's HTTP interface (Starlette): the page, its JSON API, the live frames.

Access control is the first thing every request meets (:meth:`Console.guard`):

- everything under ``/api/`` but the login needs a session cookie (HttpOnly,
  SameSite=Strict, Secure over TLS); the page itself and its script are public, they
  show the login form;
- every change (POST, PUT, DELETE) needs the session's CSRF token in the
  ``X-CSRF-Token`` header, a same-origin ``Origin`` when the browser sends one, and
  the ``admin`` role; a ``read-only`` user can look at everything but change nothing;
- a login that fails makes the next attempt from that client (and for that user
  name) wait, doubling after the first few (:class:`~gateway.console.sessions.LoginLimiter`);
  one password check runs at a time.

Changes go through the gateway's ``apply_settings`` and are recorded like obeyed
commands (the ``command`` audit event, caller ``console:<user>``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import __version__
from gateway.config.console import ConsoleConfig, ConsoleRole
from gateway.console import cameras as cams
from gateway.console.passwords import hash_password, verify_password
from gateway.console.sessions import LoginLimiter, Session, SessionStore
from gateway.console.tasks import SAFE_DOCTOR_CHECKS, Task
from gateway.console.unit import ConsoleUnit
from gateway.console.views import LiveViews
from gateway.errors import ConfigError, ConfigWriteError, GatewayError, InputError
from gateway.logs import LogRing
from gateway.ratelog import RateLimitedLog
from gateway.redaction import redact_settings
from gateway.runtime.commands import AuditRecord
from gateway.runtime.live_settings import CameraEdit
from gateway.security.authorize import leaf_paths
from gateway.security.signing import Caller

log = logging.getLogger(__name__)

COOKIE = "gw_session"
CSRF_HEADER = "x-csrf-token"
STATIC = Path(__file__).resolve().parent / "static"
UNSAFE = frozenset({"POST", "PUT", "DELETE", "PATCH"})
MAX_JSON_BYTES = 256 * 1024
_CHECKSUM = re.compile(r"^[0-9a-f]{64}$")
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

Endpoint = Callable[[Request, Session], Awaitable[Response]]


class ApiError(Exception):
    """An answer other than 200: status and a message for the page."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message, **extra}, status, headers=_NO_STORE)


_NO_STORE = {"cache-control": "no-store"}


class SecurityHeaders:
    """ASGI middleware: the same security headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Console:
    """The console's state (sessions, limits, caches, tasks) and its routes."""

    def __init__(
        self, config: ConsoleConfig, unit: ConsoleUnit, *, tls: bool, logs: LogRing
    ) -> None:
        self.config = config
        self.unit = unit
        self.tls = tls
        self.logs = logs
        self.sessions = SessionStore(
            max_sessions=config.max_sessions,
            idle_s=config.session_idle_s,
            max_s=config.session_max_s,
        )
        self.clients = LoginLimiter(free=3)
        self.user_names = LoginLimiter(free=10, max_clients=256)
        self.views = LiveViews(max_fps=config.view_fps, max_width=config.view_max_width)
        self._check_lock = threading.Lock()  # one scrypt at a time: the CPU is the pipeline's
        self._dummy_hash = hash_password("not a password of anyone")
        self._log = RateLimitedLog(log, interval_s=60.0)
        self.doctor = Task("doctor", self._run_doctor)
        self.verify = Task("verify", self._verify_models)
        self.logins_failed = 0

    # -- the application -------------------------------------------------------------

    def app(self) -> Starlette:
        """The ASGI application."""
        routes = [
            Route("/", self.page),
            Route("/favicon.ico", self.favicon),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            Route("/api/login", self.login, methods=["POST"]),
            self._route("/api/logout", self.logout, "POST", admin=False),
            self._route("/api/session", self.session_info, "GET"),
            self._route("/api/cameras", self.list_cameras, "GET"),
            self._route("/api/cameras/{camera}/live", self.camera_live, "GET"),
            self._route("/api/cameras/{camera}/frame.jpg", self.camera_frame, "GET"),
            self._route("/api/cameras/{camera}/geometry", self.save_geometry, "POST"),
            self._route("/api/cameras/{camera}/restart", self.restart_camera, "POST"),
            self._route("/api/status", self.status, "GET"),
            self._route("/api/config", self.running_config, "GET"),
            self._route("/api/logs", self.log_lines, "GET"),
            self._route("/api/models", self.list_models, "GET"),
            self._route("/api/models/verify", self.verify_models, "POST"),
            self._route("/api/models/verify", self.verify_state, "GET"),
            self._route("/api/models/{name}", self.import_model, "PUT"),
            self._route("/api/doctor", self.run_doctor, "POST"),
            self._route("/api/doctor", self.doctor_state, "GET"),
        ]
        return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])

    def _route(self, path: str, endpoint: Endpoint, method: str, *, admin: bool = True) -> Route:
        async def guarded(request: Request) -> Response:
            try:
                session = self.guard(request, admin=admin)
                return await endpoint(request, session)
            except ApiError as exc:
                return _error(exc.status, str(exc), **exc.extra)

        return Route(path, guarded, methods=[method])

    def guard(self, request: Request, *, admin: bool) -> Session:
        """The request's session; :class:`ApiError` unless it may do what it asks."""
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise ApiError(401, "log in first (no session, or it has expired)")
        if request.method in UNSAFE:
            if not _same_origin(request):
                raise ApiError(403, "refused: the request comes from another site")
            if not session.csrf_ok(request.headers.get(CSRF_HEADER)):
                raise ApiError(403, "refused: missing or wrong CSRF token (reload the page)")
            if admin and session.role != "admin":
                raise ApiError(403, f"refused: {session.user} has the read-only role")
        return session

    # -- page ------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        """The one page (it shows the login form until a session exists)."""
        return FileResponse(STATIC / "index.html", headers=_NO_STORE)

    async def favicon(self, request: Request) -> Response:
        """No icon (a 204 instead of a logged 404)."""
        return Response(status_code=204)

    # -- login -----------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        """Check a user name and password; start a session."""
        if not _same_origin(request):
            return _error(403, "refused: the request comes from another site")
        try:
            body = await _json(request)
        except ApiError as exc:
            return _error(exc.status, str(exc))
        user = body.get("user") if isinstance(body, dict) else None
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(user, str) or not isinstance(password, str) or len(password) > 1024:
            return _error(400, "send the user name and password")
        client = request.client.host if request.client is not None else "unknown"
        user = user.strip()[:64]
        role, wait = await run_in_threadpool(self._check, client, user, password)
        if role is None and wait is not None:
            retry = max(1, round(wait + 0.5))
            response = _error(
                429,
                f"too many failed logins: wait {retry} s before the next try",
                retry_after_s=retry,
            )
            response.headers["retry-after"] = str(retry)
            return response
        if role is None:
            self.logins_failed += 1
            self._log.log(
                f"login:{client}",
                logging.WARNING,
                "console: failed login as %r from %s",
                user,
                client,
            )
            return _error(401, "wrong user name or password")
        session = self.sessions.create(user, role)
        log.info("console: %s (%s) logged in from %s", user, role, client)
        response = JSONResponse(self._session_json(session), headers=_NO_STORE)
        response.set_cookie(
            COOKIE,
            session.token,
            httponly=True,
            samesite="strict",
            secure=self.tls,
            path="/",
        )
        return response

    def _check(
        self, client: str, user: str, password: str
    ) -> tuple[ConsoleRole | None, float | None]:
        """``(role, None)`` when right, ``(None, None)`` when wrong, ``(None, wait)`` backed off.

        The back-off is looked up and a failure recorded under the same lock as the check,
        so guesses sent at once cannot all pass the look-up before the first is recorded.
        """
        account = self.unit.settings().console.users.get(user)
        with self._check_lock:
            wait = max(self.clients.wait_s(client), self.user_names.wait_s(user))
            if wait > 0:
                return None, wait
            # An unknown user costs the same check (no timing oracle for user names).
            ok = verify_password(password, account.password_hash if account else self._dummy_hash)
            if ok and account is not None:
                self.clients.succeeded(client)
                self.user_names.succeeded(user)
                return account.role, None
            self.clients.failed(client)
            self.user_names.failed(user)
            return None, None

    async def logout(self, request: Request, session: Session) -> Response:
        """End the session."""
        self.sessions.end(session.token)
        response = JSONResponse({"ok": True}, headers=_NO_STORE)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=self.tls)
        return response

    def _session_json(self, session: Session) -> dict[str, Any]:
        return {
            "ok": True,
            "user": session.user,
            "role": session.role,
            "csrf": session.csrf,
            "unit": self.unit.name,
            "version": __version__,
            "view_fps": self.config.view_fps,
        }

    async def session_info(self, request: Request, session: Session) -> Response:
        """Who is logged in, the CSRF token for changes, the unit's name."""
        return _json_response(self._session_json(session))

    # -- cameras ---------------------------------------------------------------------

    def _runner(self, request: Request) -> tuple[str, Any]:
        cam_id = request.path_params["camera"]
        runner = self.unit.cameras.get(cam_id)
        if runner is None:
            raise ApiError(404, f"no running camera {cam_id!r}")
        return cam_id, runner

    async def list_cameras(self, request: Request, session: Session) -> Response:
        """Every running camera with its source (credentials masked) and editable shapes."""
        out = []
        for cam_id, runner in list(self.unit.cameras.items()):
            camera = runner.camera
            out.append(
                {
                    "id": cam_id,
                    "source": camera.source.describe(),
                    "geometry": cams.geometry(camera),
                }
            )
        return _json_response({"cameras": out})

    async def camera_live(self, request: Request, session: Session) -> Response:
        """State, rates, counts and occupancy of one camera, now."""
        _, runner = self._runner(request)
        state = await run_in_threadpool(cams.live_state, runner)
        state["geometry"] = cams.geometry(runner.camera)
        return _json_response(state)

    async def camera_frame(self, request: Request, session: Session) -> Response:
        """The latest processed frame with its boxes, as JPEG (encoded now, rate-capped)."""
        cam_id, runner = self._runner(request)
        frame = await run_in_threadpool(self.views.frame, cam_id, runner)
        if frame is None:
            raise ApiError(503, f"camera {cam_id!r} has no processed frame yet")
        headers = {
            **_NO_STORE,
            "x-frame-index": str(frame.index),
            "x-frame-time": f"{frame.timestamp:.3f}",
            "x-frame-size": f"{frame.width}x{frame.height}",
        }
        return Response(frame.jpeg, media_type="image/jpeg", headers=headers)

    async def save_geometry(self, request: Request, session: Session) -> Response:
        """Save the page's lines, zones and speed points of one camera, then restart it."""
        cam_id, _ = self._runner(request)
        try:
            patch = cams.edit_patch(await _json(request))
        except InputError as exc:
            raise ApiError(400, str(exc)) from exc
        index = [c.id for c in self.unit.settings().cameras].index(cam_id)
        change = CameraEdit(cam_id, patch)
        paths = sorted(f"cameras.{cam_id}.{p}" for p in leaf_paths(patch))
        try:
            result = await run_in_threadpool(self.unit.apply_settings, change)
        except ConfigError as exc:
            self._audit(session, "set_config", str(exc), patch_paths=paths, camera=cam_id)
            problems = cams.page_problems(exc.problems, index) or [
                {"path": "", "message": str(exc)}
            ]
            return _error(400, "not saved: " + str(exc), problems=problems)
        except (ConfigWriteError, GatewayError) as exc:
            self._audit(session, "set_config", str(exc), patch_paths=paths, camera=cam_id)
            return _error(500, f"not saved: {exc}", problems=[{"path": "", "message": str(exc)}])
        self._audit(session, "set_config", None, patch_paths=paths, camera=cam_id)
        log.info(
            "console: %s saved %s of camera %s", session.user, ", ".join(sorted(patch)), cam_id
        )
        return _json_response({"ok": True, **result.to_json(), "status": result.status})

    async def restart_camera(self, request: Request, session: Session) -> Response:
        """Reconnect one camera from scratch."""
        cam_id, runner = self._runner(request)
        await run_in_threadpool(runner.restart)
        self._audit(session, "restart_pipeline", None, camera=cam_id)
        return _json_response({"ok": True, "camera": cam_id})

    # -- status ----------------------------------------------------------------------

    async def status(self, request: Request, session: Session) -> Response:
        """The health event's data (built now) and the latest sensor readings."""
        health = await run_in_threadpool(self.unit.health)
        readings = {
            sensor_id: {
                "protocol": r.protocol,
                "values": r.values,
                "timestamp": r.timestamp,
                "age_s": round(max(0.0, time.time() - r.timestamp), 1),
            }
            for sensor_id, r in self.unit.readings().items()
        }
        return _json_response(
            {"unit": self.unit.name, "version": __version__, "health": health, "readings": readings}
        )

    async def running_config(self, request: Request, session: Session) -> Response:
        """The running settings with every secret redacted (as ``get_config`` answers)."""
        return _json_response({"config": redact_settings(self.unit.settings())})

    async def log_lines(self, request: Request, session: Session) -> Response:
        """The latest log lines (after the number the page has seen)."""
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            after = 0
        return _json_response({"lines": self.logs.tail(after)})

    # -- models ----------------------------------------------------------------------

    def _store(self) -> Any:
        from gateway.modelstore.store import ModelStore

        return ModelStore(self.unit.settings().model_dir)

    async def list_models(self, request: Request, session: Session) -> Response:
        """The model store's models with their checksums."""
        try:
            models = await run_in_threadpool(lambda: [m.as_dict() for m in self._store().models()])
        except GatewayError as exc:
            raise ApiError(500, str(exc)) from exc
        in_use = sorted(
            {
                (c.detector or self.unit.settings().detector).model
                for c in self.unit.settings().cameras
            }
        )
        return _json_response(
            {"models": models, "in_use": in_use, "store": str(self.unit.settings().model_dir)}
        )

    def _verify_models(self) -> list[dict[str, Any]]:
        return [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in self._store().verify()]

    async def verify_models(self, request: Request, session: Session) -> Response:
        """Start re-checking every stored model's checksum."""
        self.verify.start()
        return _json_response(self.verify.as_dict())

    async def verify_state(self, request: Request, session: Session) -> Response:
        """The last verification."""
        return _json_response(self.verify.as_dict())

    async def import_model(self, request: Request, session: Session) -> Response:
        """Import an ONNX file sent as the request body (``X-Expected-SHA256`` optional)."""
        from gateway.modelstore.store import validate_name

        name = request.path_params["name"]
        try:
            validate_name(name)
        except InputError as exc:
            raise ApiError(400, str(exc)) from exc
        expected = request.headers.get("x-expected-sha256", "").strip().lower() or None
        if expected is not None and not _CHECKSUM.match(expected):
            raise ApiError(400, "the expected SHA-256 must be 64 hexadecimal digits")
        limit = self.config.max_upload_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise ApiError(413, f"the file is larger than the console takes ({limit} bytes)")
        data_dir = self.unit.settings().gateway.data_dir
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=".console-upload-") as tmp:
            path = Path(tmp) / "upload.onnx"
            digest = hashlib.sha256()
            size = 0
            with path.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(
                            413, f"the file is larger than the console takes ({limit} bytes)"
                        )
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise ApiError(400, "the upload is empty: choose an .onnx file")
            sha = digest.hexdigest()
            if expected is not None and sha != expected:
                self._audit(session, "import_model", "checksum mismatch", model=name)
                raise ApiError(
                    400,
                    f"checksum mismatch: the file's SHA-256 is {sha}, not {expected}; "
                    "nothing imported",
                    sha256=sha,
                )
            try:
                model = await run_in_threadpool(self._store().import_file, path, name)
            except GatewayError as exc:
                self._audit(session, "import_model", str(exc), model=name)
                raise ApiError(400, f"not imported: {exc}", sha256=sha) from exc
        self._audit(session, "import_model", None, model=name)
        log.info("console: %s imported model %s (sha256 %s)", session.user, name, model.sha256)
        return _json_response({"ok": True, "model": model.as_dict()})

    # -- doctor ----------------------------------------------------------------------

    def _run_doctor(self) -> dict[str, Any]:
        from gateway.doctor import run_doctor

        path = self.unit.config_path
        if path is None:
            raise ConfigError("the gateway runs without a config file")
        return run_doctor(path, only=SAFE_DOCTOR_CHECKS, roles=frozenset({"run"})).as_dict()

    async def run_doctor(self, request: Request, session: Session) -> Response:
        """Start doctor's checks that are safe on a running unit."""
        self.doctor.start()
        return _json_response({**self.doctor.as_dict(), "checks": list(SAFE_DOCTOR_CHECKS)})

    async def doctor_state(self, request: Request, session: Session) -> Response:
        """The last doctor run."""
        return _json_response({**self.doctor.as_dict(), "checks": list(SAFE_DOCTOR_CHECKS)})

    # -- audit -----------------------------------------------------------------------

    def _audit(self, session: Session, command: str, error: str | None, **details: Any) -> None:
        caller = Caller(f"console:{session.user}", session.role, None, None)
        try:
            self.unit.audit(AuditRecord(command, caller, error is None, error, details))
        except Exception:  # the change is made; its record failing is logged
            log.exception("console: could not record the audit event of %s", command)


def _same_origin(request: Request) -> bool:
    """No ``Origin`` (not a browser's cross-site request) or one naming this host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


async def _json(request: Request) -> Any:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "send JSON (Content-Type: application/json)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, "request too large")
    import json

    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"not JSON: {exc}") from exc


def _json_response(data: Any) -> JSONResponse:
    return JSONResponse(data, headers=_NO_STORE)
