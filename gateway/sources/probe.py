"""Why a network camera does not open: the cause, found before FFmpeg is asked.

FFmpeg reports most failures as "could not open" after its own retries. A short
probe of the URL names the cause within the timeout instead: the name does not
resolve, nothing listens, no route, the camera wants (other) credentials, the path
is wrong, the RTSP session is gone, or what answers is not a video (a web page, an
SDP without a video track). :func:`probe_url` raises :class:`CameraOpenError` with
the cause and the fix; when it returns, the URL speaks HTTP or RTSP with a video
behind it and FFmpeg gets its turn.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field

from gateway import net
from gateway.errors import CameraOpenError

# Causes the network gives (no camera answered): FFmpeg would fail the same way.
FINAL_CAUSES = frozenset({net.DNS_FAILURE, net.REFUSED, net.NO_ROUTE, net.TIMEOUT, net.FAILED})
DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}
MAX_HEAD = 64 * 1024  # bytes of status line and headers read at most
MAX_SDP = 64 * 1024
VIDEO_TYPES = ("multipart/x-mixed-replace", "image/", "video/", "application/octet-stream")
_USER_AGENT = "roadside-gateway-probe"

_STATUS_FIXES = {
    401: "put the camera's user and password in the URL (scheme://USER:PASSWORD@host/...), "
    "or correct them",
    403: "this user may not view the stream; give it the viewer right on the camera",
    404: "check the stream path in the URL (the camera's manual or web page lists it)",
    454: "the camera dropped the RTSP session: another client may hold its only session; "
    "close it or reboot the camera",
}


@dataclass(slots=True)
class _Response:
    protocol: str
    status: int
    reason: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    shown: str  # for messages: no credentials
    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None
    path: str  # HTTP request target

    @property
    def rtsp(self) -> bool:
        return self.scheme.startswith("rtsp")

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "rtsps")

    @property
    def bare_url(self) -> str:
        """The URL without user information (RTSP request lines carry it)."""
        netloc = self.host if ":" not in self.host else f"[{self.host}]"
        parts = urllib.parse.urlsplit(self.url)
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def mask(url: str) -> str:
    """``url`` with its credentials replaced by ``***``."""
    return re.sub(r"//[^/@]*@", "//***@", url)


def probe_url(url: str, timeout_s: float) -> None:
    """Check that ``url`` answers as a video camera within ``timeout_s``.

    Raises:
        CameraOpenError: with the cause (``DNS failure``, ``connection refused``,
            ``no route to host``, ``timeout``, ``TLS failure``, ``HTTP 401``, ``RTSP 454``,
            ``not a video``, ...) and the fix.
    """
    target = _target(url)
    deadline = time.monotonic() + timeout_s
    sock = _connect(target, deadline)
    try:
        if target.tls:
            sock = _tls(target, sock, deadline)
        if target.rtsp:
            _rtsp(target, sock, deadline)
        else:
            _http(target, sock, deadline)
    finally:
        sock.close()


def _target(url: str) -> _Target:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    shown = "url " + mask(url)  # as gateway.sources.base.describe names it
    try:
        port = parts.port
    except ValueError as exc:
        raise CameraOpenError(shown, "bad URL", str(exc), "check the port number") from exc
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise CameraOpenError(
            shown,
            "bad URL",
            "expected rtsp://, rtsps://, http:// or https:// and a host",
            "write the URL as scheme://[user:password@]host[:port]/path",
        )
    user = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(
        url, shown, scheme, parts.hostname, port or DEFAULT_PORTS[scheme], user, password, path
    )


_NET_FIXES = {
    net.DNS_FAILURE: "check the host name, the DNS server in /etc/resolv.conf, or use the "
    "camera's IP address",
    net.NO_ROUTE: "check the address, the cable or VLAN, and this unit's network settings",
    net.TIMEOUT: "check the address, that the camera is powered, and firewalls on the way",
    net.FAILED: "check the address and the network",
}


def _connect(target: _Target, deadline: float) -> socket.socket:
    try:
        return net.connect(target.host, target.port, net.remaining(deadline))
    except net.NetError as exc:
        if exc.cause == net.REFUSED:
            service = "RTSP" if target.rtsp else "HTTP"
            fix = (
                "check the port (RTSP is usually 554, HTTP 80) and that the camera's "
                f"{service} service is enabled"
            )
        else:
            fix = _NET_FIXES.get(exc.cause, _NET_FIXES[net.FAILED])
        raise CameraOpenError(target.shown, exc.cause, exc.detail, fix) from exc


def _tls(target: _Target, sock: socket.socket, deadline: float) -> socket.socket:
    # Cameras use self-signed certificates and FFmpeg does not verify them by default:
    # the probe checks that TLS works, not who signed it.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock.settimeout(net.remaining(deadline))
    try:
        return context.wrap_socket(sock, server_hostname=target.host)
    except TimeoutError as exc:
        raise CameraOpenError(
            target.shown,
            "timeout",
            "no TLS answer (is this a TLS port?)",
            "use http:// or rtsp:// if the camera does not speak TLS on this port",
        ) from exc
    except (ssl.SSLError, OSError) as exc:
        raise CameraOpenError(
            target.shown,
            "TLS failure",
            str(exc),
            "use http:// or rtsp:// if the camera does not speak TLS on this port",
        ) from exc


def _exchange(
    target: _Target, sock: socket.socket, request: bytes, deadline: float, *, body: bool
) -> _Response:
    sock.settimeout(net.remaining(deadline))
    try:
        sock.sendall(request)
        return _read_response(sock, deadline, body=body)
    except TimeoutError as exc:
        raise CameraOpenError(
            target.shown,
            "timeout",
            f"{target.host}:{target.port} accepted the connection but did not answer",
            "check the port: another service may listen there; or the camera is overloaded",
        ) from exc
    except (ConnectionError, ValueError) as exc:
        kind = "an RTSP" if target.rtsp else "an HTTP"
        raise CameraOpenError(
            target.shown,
            "not a video",
            f"{target.host}:{target.port} is not {kind} server ({exc})",
            "check the scheme and port of the URL",
        ) from exc


def _wrong_protocol(target: _Target, response: _Response) -> None:
    """An HTTP server on an rtsp:// URL's port, or an RTSP server on an http:// one."""
    expected = "RTSP" if target.rtsp else "HTTP"
    if response.protocol != expected:
        scheme = "http" if response.protocol == "HTTP" else "rtsp"
        raise CameraOpenError(
            target.shown,
            "not a video",
            f"an {response.protocol} server answers on {target.host}:{target.port}, not {expected}",
            f"use {scheme}://{target.host}:{target.port}/... or the camera's {expected} port",
        )


def _read_response(sock: socket.socket, deadline: float, *, body: bool) -> _Response:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            raise ValueError("no end of headers")
        sock.settimeout(net.remaining(deadline))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed without an answer" if not data else "answer cut short")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    match = re.match(r"^(HTTP|RTSP)/\d(?:\.\d)? (\d{3}) ?(.*)$", lines[0])
    if match is None:
        raise ValueError(f"unexpected answer {lines[0][:60]!r}")
    response = _Response(match.group(1), int(match.group(2)), match.group(3).strip())
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            response.headers.setdefault(name.strip().lower(), []).append(value.strip())
    if body:
        length = int(response.header("content-length") or 0)
        while len(rest) < min(length, MAX_SDP):
            sock.settimeout(net.remaining(deadline))
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
        response.body = rest[: min(length, MAX_SDP)]
    return response


def _authorization(target: _Target, response: _Response, method: str, uri: str) -> str | None:
    """An ``Authorization`` value answering the challenge, when the URL has credentials."""
    if target.user is None:
        return None
    password = target.password or ""
    challenges = response.headers.get("www-authenticate", [])
    digest = next((c for c in challenges if c.lower().startswith("digest")), None)
    if digest is None:
        token = base64.b64encode(f"{target.user}:{password}".encode()).decode()
        return f"Basic {token}"
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', digest[len("digest") :]))
    realm, nonce = params.get("realm", ""), params.get("nonce", "")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    ha1 = md5(f"{target.user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    fields = [f'username="{target.user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
        cnonce = os.urandom(8).hex()
        answer = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
        fields += ["qop=auth", "nc=00000001", f'cnonce="{cnonce}"']
    else:
        answer = md5(f"{ha1}:{nonce}:{ha2}")
    fields.append(f'response="{answer}"')
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


def _status_error(target: _Target, response: _Response, sent_credentials: bool) -> None:
    protocol = "RTSP" if target.rtsp else "HTTP"
    status = response.status
    if status == 401:
        detail = (
            "the camera refused the user name and password in the URL"
            if sent_credentials
            else "the camera wants a user name and password"
        )
    elif status == 454:
        detail = "Session Not Found"
    else:
        detail = response.reason or "error"
    fix = _STATUS_FIXES.get(status, "check the URL against the camera's manual")
    raise CameraOpenError(target.shown, f"{protocol} {status}", detail, fix)


def _http(target: _Target, sock: socket.socket, deadline: float) -> None:
    def request(auth: str | None) -> bytes:
        lines = [
            f"GET {target.path} HTTP/1.1",
            f"Host: {target.host}:{target.port}",
            f"User-Agent: {_USER_AGENT}",
            "Accept: */*",
            "Connection: close",
        ]
        if auth:
            lines.append(f"Authorization: {auth}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")

    response = _exchange(target, sock, request(None), deadline, body=False)
    _wrong_protocol(target, response)
    sent = False
    if response.status == 401 and target.user is not None:
        # The first answer only carried the challenge: ask again with the credentials
        # on a new connection (the server may close the first one).
        sock.close()
        sock = _connect(target, deadline)
        if target.tls:
            sock = _tls(target, sock, deadline)
        try:
            auth = _authorization(target, response, "GET", target.path)
            response = _exchange(target, sock, request(auth), deadline, body=False)
        finally:
            sock.close()
        sent = True
    if response.status >= 400:
        _status_error(target, response, sent)
    if 300 <= response.status < 400:
        location = response.header("location") or "?"
        raise CameraOpenError(
            target.shown,
            f"HTTP {response.status}",
            f"redirects to {mask(location)}",
            "use the address it redirects to",
        )
    ctype = response.header("content-type").lower()
    if ctype and not ctype.startswith(VIDEO_TYPES):
        raise CameraOpenError(
            target.shown,
            "not a video",
            f"the server answered with {ctype.split(';')[0]}",
            "this URL is a web page, not the stream; the camera's manual gives the stream "
            "URL (MJPEG streams are multipart/x-mixed-replace)",
        )


def _rtsp(target: _Target, sock: socket.socket, deadline: float) -> None:
    uri = target.bare_url

    def request(cseq: int, auth: str | None) -> bytes:
        lines = [
            f"DESCRIBE {uri} RTSP/1.0",
            f"CSeq: {cseq}",
            f"User-Agent: {_USER_AGENT}",
            "Accept: application/sdp",
        ]
        if auth:
            lines.append(f"Authorization: {auth}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")

    response = _exchange(target, sock, request(1, None), deadline, body=True)
    _wrong_protocol(target, response)
    sent = False
    if response.status == 401 and target.user is not None:
        auth = _authorization(target, response, "DESCRIBE", uri)
        response = _exchange(target, sock, request(2, auth), deadline, body=True)
        sent = True
    if response.status >= 300:
        _status_error(target, response, sent)
    sdp = response.body.decode("utf-8", "replace")
    if not re.search(r"^m=video ", sdp, re.MULTILINE):
        tracks = ", ".join(re.findall(r"^m=(\w+)", sdp, re.MULTILINE)) or "none"
        raise CameraOpenError(
            target.shown,
            "not a video",
            f"the RTSP stream has no video track (tracks: {tracks})",
            "check the stream path: this one carries no video",
        )
