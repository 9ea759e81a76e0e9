"""API-key authentication and roles.

Keys are given to the server only as SHA-256 digests (``Settings.api_keys``); a request sends
the key itself in ``Authorization: Bearer <key>`` or ``X-API-Key``. With no keys configured
the server is in *local mode*: it binds loopback only and every caller is an admin.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from typing import Literal

from cmdb_graph.errors import AuthorizationError, ConfigurationError
from cmdb_graph.settings import ApiKey, Role, Settings, hash_api_key

__all__ = ["Principal", "authenticate", "check_bind_address", "new_api_key", "require_role"]


class Principal:
    """Who is calling: a key name (or ``"local"``/``"anonymous"``) and a role (or ``None``)."""

    __slots__ = ("name", "role")

    def __init__(self, name: str, role: Role | None) -> None:
        self.name = name
        self.role = role

    def __repr__(self) -> str:
        return f"Principal({self.name!r}, {self.role!r})"


def authenticate(settings: Settings, headers: Mapping[str, str]) -> Principal:
    """The principal behind a request's headers.

    Parameters
    ----------
    settings : Settings
        Holds the configured key digests.
    headers : mapping
        Request headers (case-insensitive mapping, as Starlette gives).

    Returns
    -------
    Principal
        ``local`` admin when no keys are configured; the matching key's name and role; or
        ``anonymous`` without a role when the key is missing or unknown.
    """
    if not settings.api_keys:
        return Principal("local", Role.ADMIN)
    key = headers.get("x-api-key")
    auth = headers.get("authorization")
    if key is None and auth and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    if not key:
        return Principal("anonymous", None)
    digest = hash_api_key(key)
    found: ApiKey | None = None
    for candidate in settings.api_keys:
        if hmac.compare_digest(candidate.sha256, digest):
            found = candidate
    if found is None:
        return Principal("anonymous", None)
    return Principal(found.name, found.level)


def require_role(principal: Principal, role: Role) -> None:
    """Raise unless ``principal`` holds ``role`` or a higher one.

    Raises
    ------
    AuthorizationError
        No or an unknown API key, or a role below ``role``.
    """
    if principal.role is None:
        raise AuthorizationError("an API key is required (Authorization: Bearer <key>)")
    if principal.role < role:
        raise AuthorizationError(
            f"role {principal.role.name.lower()} may not do this; {role.name.lower()} needed"
        )


def check_bind_address(settings: Settings, host: str) -> None:
    """Refuse to listen beyond loopback when no API keys are configured.

    Raises
    ------
    ConfigurationError
        ``host`` is not a loopback address (or ``localhost``) and no keys are configured.
    """
    if settings.api_keys:
        return
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigurationError(
            f"refusing to listen on {host}: no API keys are configured (CMDB_API_KEYS), so the "
            "server binds loopback only; configure keys to serve other hosts"
        )


def new_api_key(
    name: str, role: Literal["reader", "writer", "admin"]
) -> tuple[str, ApiKey]:
    """A new random API key and the settings entry (its digest) to configure it with."""
    key = "cmdb_" + secrets.token_urlsafe(32)
    return key, ApiKey(name=name, role=role, sha256=hash_api_key(key))
