"""HTTP for connectors and push targets: httpx with auth, timeouts and stamina retries.

:class:`ApiClient` is the one place a connector talks HTTP. It

- authenticates as the sources file says (:class:`~cmdb_graph.connectors.config.Auth`): a
  token in the header the API wants, basic auth, or OAuth 2 client credentials (the access
  token is fetched once and again when it expires or a call answers 401);
- retries 429 and 5xx answers, timeouts and dropped connections with exponential backoff
  (stamina), waiting what a ``Retry-After`` header asks (seconds or an HTTP date, capped by
  :attr:`~cmdb_graph.connectors.config.RetryPolicy.max_retry_after`);
- turns every failure into one :class:`ConnectorError` line naming the source, the method,
  the URL without its query string, and what to do, with every credential value redacted;
- reports each page it fetched to a progress callback.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import stamina

from cmdb_graph.connectors.config import Auth, RetryPolicy
from cmdb_graph.errors import CmdbError

__all__ = ["ApiClient", "ConnectorError", "Progress", "redact"]

log = logging.getLogger(__name__)

#: progress(source, message): one call per page fetched or step taken.
Progress = Callable[[str, str], None]


class ConnectorError(CmdbError):
    """A source's or target's API failed (after retries), refused the credentials, or answered
    something the connector cannot read. The message is one line and holds no secret."""

    code = "CONNECTOR_ERROR"


class _Retryable(Exception):
    """A 429 or 5xx answer worth another try (``retry_after`` in seconds when the API said)."""

    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"{response.status_code} {response.reason_phrase}")
        self.response = response
        self.retry_after = retry_after


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with each secret value replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class _Token:
    value: str
    expires: float


class ApiClient:
    """An httpx client bound to one source or target (see the module docstring).

    Parameters
    ----------
    name : str
        The source or target name, first word of every error and progress line.
    base_url : str
        The API's base URL; relative paths are joined to it.
    auth : Auth
        Credentials (already resolved from the environment or secrets files).
    retry : RetryPolicy
        Attempts, timeouts and waits.
    token_scheme : str
        The ``Authorization`` scheme of ``token`` auth (``Bearer``, ``Token``).
    oauth_token_url : str
        Default OAuth token endpoint, relative to ``base_url`` (ServiceNow ``/oauth_token.do``).
    progress : callable, optional
        ``progress(name, message)`` after each page.
    verify : bool
        Check TLS certificates.
    transport : httpx.BaseTransport, optional
        For tests that need one (the stand-in servers are real HTTP servers; none do).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        auth: Auth,
        retry: RetryPolicy,
        token_scheme: str = "Bearer",
        oauth_token_url: str = "/oauth/token",
        progress: Progress | None = None,
        verify: bool = True,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.retry = retry
        self.token_scheme = token_scheme
        self.oauth_token_url = auth.token_url or oauth_token_url
        self.progress = progress
        self.requests = 0
        self.pages = 0
        self.extra_headers: dict[str, str] = dict(headers or {})
        self._token: _Token | None = None
        self._client = httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(retry.timeout), verify=verify,
            headers={"Accept": "application/json", "User-Agent": "cmdb-graph-connector"},
            transport=transport, follow_redirects=False,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    # -- errors -----------------------------------------------------------------------------
    def error(self, message: str) -> ConnectorError:
        """A ConnectorError for this source: one line, secrets redacted."""
        line = " ".join(f"{self.name}: {message}".split())
        return ConnectorError(redact(line, self.auth.secrets()))

    def note(self, message: str) -> None:
        """Report progress (one line)."""
        if self.progress is not None:
            self.progress(self.name, message)

    # -- auth -------------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        a = self.auth
        if a.type == "token" and a.token is not None:
            return {"Authorization": f"{self.token_scheme} {a.token.get_secret_value()}"}
        if a.type == "oauth":
            return {"Authorization": f"Bearer {self._oauth_token()}"}
        return {}

    def _basic(self) -> httpx.BasicAuth | None:
        a = self.auth
        if a.type == "basic" and a.username is not None and a.password is not None:
            return httpx.BasicAuth(a.username.get_secret_value(), a.password.get_secret_value())
        return None

    def _oauth_token(self) -> str:
        """The OAuth 2 access token (client credentials grant), fetched when missing or old."""
        if self._token is not None and self._token.expires > time.monotonic() + 30:
            return self._token.value
        a = self.auth
        assert a.client_id is not None and a.client_secret is not None
        form = {"grant_type": "client_credentials", "client_id": a.client_id.get_secret_value(),
                "client_secret": a.client_secret.get_secret_value()}
        if a.scope:
            form["scope"] = a.scope
        response = self._call("POST", self.oauth_token_url, data=form, authenticate=False)
        try:
            body = response.json()
            token = str(body["access_token"])
            ttl = float(body.get("expires_in") or 1800)
        except (ValueError, KeyError, TypeError):
            raise self.error(f"POST {self.oauth_token_url}: the token answer has no "
                             "access_token") from None
        self._token = _Token(token, time.monotonic() + ttl)
        return token

    # -- requests ---------------------------------------------------------------------------
    def _hook(self, exc: Exception) -> bool | float:
        if isinstance(exc, _Retryable):
            if exc.retry_after is not None:
                return min(exc.retry_after, self.retry.max_retry_after)
            return True
        return isinstance(exc, httpx.TransportError)

    def _once(self, method: str, url: str, *, authenticate: bool,
              **kwargs: Any) -> httpx.Response:
        headers = {**self.extra_headers, **kwargs.pop("headers", {})}
        if authenticate:
            headers.update(self._auth_headers())
        self.requests += 1
        response = self._client.request(method, url, headers=headers,
                                        auth=self._basic() if authenticate else None, **kwargs)
        if response.status_code == 429 or response.status_code >= 500:
            after = retry_after_seconds(response.headers.get("Retry-After"))
            log.info("%s: %s %s answered %s; retrying", self.name, method,
                     _path(response.request.url), response.status_code)
            raise _Retryable(response, after)
        return response

    def _call(self, method: str, url: str, *, authenticate: bool = True,
              **kwargs: Any) -> httpx.Response:
        where = f"{method} {_path(httpx.URL(self.base_url).join(url))}"
        r = self.retry
        try:
            for attempt in stamina.retry_context(
                    on=self._hook, attempts=r.attempts, timeout=r.timeout * r.attempts,
                    wait_initial=r.wait_initial, wait_max=r.wait_max,
                    wait_jitter=r.wait_jitter):
                with attempt:
                    response = self._once(method, url, authenticate=authenticate, **kwargs)
        except _Retryable as exc:
            raise self.error(f"{where} answered {exc} {_hint(exc.response)}after "
                             f"{r.attempts} attempts") from None
        except httpx.TimeoutException:
            raise self.error(f"{where} timed out ({r.timeout:g} s) after {r.attempts} "
                             "attempts") from None
        except httpx.TransportError as exc:
            raise self.error(f"{where} failed: {type(exc).__name__}: {exc}") from None
        if response.status_code in (401, 403):
            if authenticate and self.auth.type == "oauth" and self._token is not None:
                self._token = None  # expired early: one fresh token, one more try
                return self._call(method, url, authenticate=authenticate, **kwargs)
            raise self.error(
                f"{where} answered {response.status_code} {response.reason_phrase}: the "
                f"credentials ({self.auth.type}) were refused or lack a permission "
                "(see docs/connectors.md)")
        return response

    def request(self, method: str, url: str, *, ok: tuple[int, ...] = (200,),
                **kwargs: Any) -> httpx.Response:
        """One call with retries; any status outside ``ok`` is a :class:`ConnectorError`."""
        response = self._call(method, url, **kwargs)
        if response.status_code not in ok:
            where = f"{method} {_path(response.request.url)}"
            raise self.error(f"{where} answered {response.status_code} "
                             f"{response.reason_phrase}{_detail(response)}")
        return response

    def json(self, method: str, url: str, *, ok: tuple[int, ...] = (200,),
             **kwargs: Any) -> Any:
        """The decoded JSON body of one call (see :meth:`request`)."""
        response = self.request(method, url, ok=ok, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise self.error(f"{method} {_path(response.request.url)} answered "
                             f"{response.status_code} but not with JSON") from None

    def get_page(self, url: str, *, what: str, ok: tuple[int, ...] = (200,),
                 **kwargs: Any) -> tuple[Any, httpx.Response]:
        """GET one page: its JSON and the response (for headers and the URL); reports it."""
        response = self.request("GET", url, ok=ok, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise self.error(f"GET {_path(response.request.url)}: the page is not "
                             "JSON") from None
        self.pages += 1
        self.note(f"{what}: page {self.pages} ({_count(body)})")
        return body, response


def _path(url: httpx.URL) -> str:
    """The URL without its query string (queries may hold filters but never belong in logs)."""
    return str(url.copy_with(query=None, fragment=None))


def _hint(response: httpx.Response) -> str:
    return "(rate limited) " if response.status_code == 429 else ""


def _detail(response: httpx.Response) -> str:
    """A short reason from an error body (``error.message``, ``message``, ``errors[0]``)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    found: Any = None
    if isinstance(body, Mapping):
        err = body.get("error")
        found = (err.get("message") if isinstance(err, Mapping) else err) or body.get("message") \
            or body.get("detail") or body.get("errorMessages")
    if isinstance(found, list) and found:
        found = found[0]
    text = " ".join(str(found).split())[:200] if found else ""
    return f": {text}" if text else ""


def _count(body: Any) -> str:
    for key in ("results", "rows", "result", "items", "values", "objectEntries"):
        if isinstance(body, Mapping) and isinstance(body.get(key), list):
            return f"{len(body[key])} items"
    if isinstance(body, list):
        return f"{len(body)} items"
    return "1 document"
