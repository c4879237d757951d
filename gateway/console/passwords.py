"""Console password hashes: scrypt (in Python's standard library), with salt and parameters.

The stored form is ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (base64), so the cost can be
raised later without breaking existing hashes. n = 2^14, r = 8 costs 16 MiB and about
0.1 s per check on a Raspberry Pi 4: cheap for a crew's login, expensive for a
guesser, and the login rate limit sits in front of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N = 2**14
R = 8
P = 1
KEY_BYTES = 32
SALT_BYTES = 16
MIN_PASSWORD = 10  # characters; a crew password is typed on a phone on a ladder, not short
_MAX_MEMORY = 2**28  # refuse hashes whose check would take more memory than this


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password``."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, N, R, P)
    return "$".join(
        (
            "scrypt",
            str(N),
            str(R),
            str(P),
            base64.b64encode(salt).decode(),
            base64.b64encode(key).decode(),
        )
    )


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time compare; False on a bad hash)."""
    try:
        scheme, n, r, p, salt64, key64 = stored.split("$")
        n_i, r_i, p_i = int(n), int(r), int(p)
        salt, key = base64.b64decode(salt64), base64.b64decode(key64)
    except ValueError:
        return False
    if scheme != "scrypt" or min(n_i, r_i, p_i) < 1 or 128 * n_i * r_i * p_i > _MAX_MEMORY:
        return False
    try:
        candidate = _scrypt(password, salt, n_i, r_i, p_i, dklen=len(key))
    except ValueError:  # parameters OpenSSL refuses
        return False
    return hmac.compare_digest(candidate, key)


def weak_password(password: str) -> str | None:
    """Why ``password`` is refused for a console login, or ``None``."""
    if len(password) < MIN_PASSWORD:
        return f"too short: at least {MIN_PASSWORD} characters"
    if len(set(password)) < 4:
        return "too few different characters"
    return None


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, *, dklen: int = KEY_BYTES) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEMORY + 2**20, dklen=dklen
    )
