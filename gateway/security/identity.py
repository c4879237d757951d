"""Identity names: the certificate's common name, which is also the MQTT user name and client id.

==========  ===========================  ==============================================
kind        common name                  what the broker lets it do
==========  ===========================  ==============================================
unit        ``{site}/{gateway}``         publish under ``{prefix}/{site}/{gateway}/``,
                                         read its own ``cmd/#``
operator    ``operator:{name}``          publish commands, read replies addressed to it
ingest      ``ingest:{name}``            read every unit's data, publish dead letters
broker      ``broker:{host}``            the broker's own server certificate
==========  ===========================  ==============================================

A unit's name has a ``/`` so that the broker's ACL pattern ``{prefix}/%u/...`` puts
it at exactly its own ``{site}/{gateway}``. Every other name has a ``:``, which no
site or gateway id may contain, so a pattern expanded with such a name can never
reach a unit's topics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from gateway.errors import SecurityError

Kind = Literal["unit", "operator", "ingest", "broker"]
Role = Literal["admin", "read-only"]
KINDS: tuple[Kind, ...] = get_args(Kind)
ROLES: tuple[Role, ...] = get_args(Role)

# Same alphabet as the config's ``Ident``: safe in a topic level and an InfluxDB tag.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


def check_name(value: str, what: str) -> str:
    """Return ``value`` when it is a valid site, gateway or identity name."""
    if not _NAME.fullmatch(value):
        raise SecurityError(f"{what} {value!r}: use 1-64 letters, digits, '_', '.' or '-'")
    return value


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a certificate names."""

    kind: Kind
    name: str
    site: str | None = None
    role: Role | None = None

    @property
    def common_name(self) -> str:
        """The certificate's CN: the MQTT user name and client id."""
        if self.kind == "unit":
            return f"{self.site}/{self.name}"
        return f"{self.kind}:{self.name}"

    @property
    def gateway(self) -> str | None:
        """The gateway id of a unit identity."""
        return self.name if self.kind == "unit" else None


def unit(site: str, gateway: str) -> Identity:
    """The identity of roadside unit ``gateway`` at ``site``."""
    return Identity("unit", check_name(gateway, "gateway id"), site=check_name(site, "site"))


def operator(name: str, role: Role) -> Identity:
    """An operator identity with its role."""
    if role not in ROLES:
        raise SecurityError(f"role {role!r}: one of {', '.join(ROLES)}")
    return Identity("operator", check_name(name, "operator name"), role=role)


def ingest(name: str) -> Identity:
    """An ingest worker identity (one per worker: it is also the worker's client id)."""
    return Identity("ingest", check_name(name, "ingest worker name"))


def broker(host: str) -> Identity:
    """The broker's server identity."""
    if not _HOST.fullmatch(host):
        raise SecurityError(f"broker host {host!r} is not a host name")
    return Identity("broker", host)


def parse_common_name(cn: str, role: Role | None = None) -> Identity:
    """Read an identity back from a certificate's CN."""
    if "/" in cn:
        site, _, gateway = cn.partition("/")
        return unit(site, gateway)
    kind, sep, name = cn.partition(":")
    if not sep:
        raise SecurityError(f"certificate name {cn!r} is not a fleet identity")
    if kind == "operator":
        return operator(name, role or "read-only")
    if kind == "ingest":
        return ingest(name)
    if kind == "broker":
        return broker(name)
    raise SecurityError(f"certificate name {cn!r} has unknown kind {kind!r}")
