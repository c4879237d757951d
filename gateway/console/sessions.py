"""Console sessions (bounded, expiring) and the login rate limit (back-off per client).

Both are in memory: a restart of the gateway logs everyone out and forgets failed
attempts, which is the safe side for both. Every structure here has a hard cap and
an eviction rule, since a console may be probed for months.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.console import ConsoleRole

Clock = Callable[[], float]


@dataclass(slots=True)
class Session:
    """One logged-in browser."""

    token: str
    user: str
    role: ConsoleRole
    csrf: str
    created: float
    last_seen: float

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether a request carries this session's CSRF token (constant-time compare)."""
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class SessionStore:
    """At most ``max_sessions`` sessions, each ending ``idle_s`` after its last use.

    A session also ends ``max_s`` after login; a login beyond the cap ends the least
    recently used session.
    """

    def __init__(
        self, *, max_sessions: int, idle_s: float, max_s: float, clock: Clock = time.monotonic
    ) -> None:
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self.max_s = max_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self.evicted = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def create(self, user: str, role: ConsoleRole) -> Session:
        """A new session for ``user`` (the token goes into the cookie)."""
        now = self._clock()
        session = Session(
            token=secrets.token_urlsafe(32),
            user=user,
            role=role,
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
        )
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= self.max_sessions:
                self._sessions.popitem(last=False)
                self.evicted += 1
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token`` (its idle time restarts), else ``None``."""
        if not token:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[token]
                return None
            session.last_seen = now
            self._sessions.move_to_end(token)
            return session

    def end(self, token: str) -> None:
        """Log a session out."""
        with self._lock:
            self._sessions.pop(token, None)

    def end_user(self, user: str) -> None:
        """End every session of ``user``."""
        with self._lock:
            for token in [t for t, s in self._sessions.items() if s.user == user]:
                del self._sessions[token]

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle_s or now - session.created > self.max_s

    def _expire(self, now: float) -> None:
        for token in [t for t, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[token]


@dataclass(slots=True)
class _Failures:
    count: int
    until: float  # no attempt is checked before this (monotonic)
    last: float


class LoginLimiter:
    """Back-off per client address after failed logins.

    The first ``free`` failures cost nothing; each further one doubles the wait before
    the next attempt is even checked (``base_s``, 2x, 4x ... up to ``max_s``). A
    success clears the client's record; records are forgotten ``forget_s`` after the
    last failure and the table holds at most ``max_clients`` (the oldest goes first).
    """

    def __init__(
        self,
        *,
        free: int = 3,
        base_s: float = 1.0,
        max_s: float = 300.0,
        forget_s: float = 3600.0,
        max_clients: int = 4096,
        clock: Clock = time.monotonic,
    ) -> None:
        self.free = free
        self.base_s = base_s
        self.max_s = max_s
        self.forget_s = forget_s
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, _Failures] = OrderedDict()
        self.refused = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def wait_s(self, client: str) -> float:
        """Seconds ``client`` must wait before its next attempt is checked (0: go ahead)."""
        now = self._clock()
        with self._lock:
            record = self._clients.get(client)
            if record is None:
                return 0.0
            if now - record.last > self.forget_s:
                del self._clients[client]
                return 0.0
            wait = max(0.0, record.until - now)
            if wait > 0:
                self.refused += 1
            return wait

    def failed(self, client: str) -> float:
        """Record a failed attempt; the wait it imposes on the next one."""
        now = self._clock()
        with self._lock:
            record = self._clients.pop(client, None) or _Failures(0, now, now)
            record.count += 1
            record.last = now
            over = record.count - self.free
            wait = 0.0 if over <= 0 else min(self.max_s, self.base_s * 2.0 ** (over - 1))
            record.until = now + wait
            self._clients[client] = record  # most recent last
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
            return wait

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures."""
        with self._lock:
            self._clients.pop(client, None)
