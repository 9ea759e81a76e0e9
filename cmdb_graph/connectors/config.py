"""The sources file: which APIs to read, how often, with which credentials, and where to push.

A YAML file (``cmdb-graph sync --sources sources.yaml``) validated with pydantic::

    sources:
      netbox-dc1:                       # the data source's name (DataSource.name)
        kind: netbox                    # the connector, see CONNECTOR_KINDS
        url: https://netbox.example.com
        auth: {type: token, token: env:NETBOX_TOKEN}
        priority: 60                    # reconciliation priority (higher wins)
        mode: full                      # full (may retire) or delta (since the last success)
        schedule: "0 * * * *"           # cron: minute hour day month weekday (seconds first
                                        # when six fields); only `serve --schedule` reads it
        options: {netbox: {role_classes: {compute: Hypervisor}}}   # per importer kind
        params: {}                      # connector-specific (tables, site, namespaces, ...)
    targets:
      snow:
        kind: servicenow-ire
        url: https://acme.service-now.com
        auth: {type: oauth, client_id: env:SN_ID, client_secret: file:/run/secrets/sn}
        mapping: push-servicenow.yaml

Credentials never sit in the YAML: every secret is a reference, ``env:NAME`` (an environment
variable) or ``file:PATH`` (a secrets file, e.g. ``/run/secrets/netbox_token``, whose content
stripped of surrounding whitespace is the secret). A literal value is refused. Resolved values
are :class:`~pydantic.SecretStr`: they print as ``**********`` and never reach a log line.

:func:`load_sources` reports every mistake of the file at once, one line each
(``sources.yaml: sources.netbox-dc1.url: Field required``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cmdb_graph.errors import ConfigurationError
from cmdb_graph.model import RunMode

__all__ = [
    "CONNECTOR_KINDS",
    "TARGET_KINDS",
    "Auth",
    "RetryPolicy",
    "SourceConfig",
    "SourcesFile",
    "TargetConfig",
    "cron_trigger",
    "load_sources",
    "resolve_secret",
]

#: connector kind -> the importer kinds its pages go to (importer options are keyed by these).
CONNECTOR_KINDS: dict[str, tuple[str, ...]] = {
    "netbox": ("netbox",),
    "snipeit": ("snipeit-api-hardware", "snipeit-api-licenses", "snipeit-api-components"),
    "lansweeper": ("lansweeper",),
    "glpi": ("glpi-rest",),
    "servicenow": ("servicenow-ci", "servicenow-rel"),
    "jsm-assets": ("jsm-assets",),
    "kubernetes": ("kubernetes",),
    "aws-ec2": ("aws-ec2",),
}
#: push target kinds
TARGET_KINDS = ("servicenow-ire", "jsm-assets-import")

_SECRET_REF = re.compile(r"^(env|file):(.+)$")
_NAME = r"^[A-Za-z0-9_.\-]+$"


def _resolve(ref: str, *, base: Path | None) -> SecretStr:
    """The secret an ``env:``/``file:`` reference points at (``ValueError`` naming the ref)."""
    found = _SECRET_REF.match(ref.strip())
    if found is None:
        raise ValueError("a credential must be a reference, env:VARIABLE or file:PATH; "
                         "never the secret itself")
    scheme, where = found.groups()
    if scheme == "env":
        value = os.environ.get(where)
        if not value:
            raise ValueError(f"environment variable {where} is not set")
        return SecretStr(value)
    path = Path(where)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"secrets file {path} cannot be read ({exc.strerror})") from None
    if not value:
        raise ValueError(f"secrets file {path} is empty")
    return SecretStr(value)


def resolve_secret(ref: str, *, base: Path | None = None) -> SecretStr:
    """The secret an ``env:NAME`` / ``file:PATH`` reference points at (a relative path is
    taken from ``base``).

    Raises
    ------
    ValueError
        Not a reference, or what it points at is unset, unreadable or empty.
    """
    return _resolve(ref, base=base)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Auth(_Strict):
    """How a connector authenticates; every secret field is an ``env:``/``file:`` reference.

    Types: ``none``; ``token`` (``token``; the connector puts it in the header its API wants:
    NetBox ``Token``, Lansweeper ``Token``, others ``Bearer``); ``basic`` (``username``,
    ``password``); ``oauth`` (OAuth 2 client credentials: ``client_id``, ``client_secret``,
    optional ``token_url`` and ``scope``); ``glpi`` (``app_token`` and ``user_token``: GLPI's
    initSession).
    """

    type: Literal["none", "token", "basic", "oauth", "glpi"] = "none"
    token: SecretStr | None = None
    username: SecretStr | None = None
    password: SecretStr | None = None
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None
    scope: str | None = None
    app_token: SecretStr | None = None
    user_token: SecretStr | None = None

    @field_validator("token", "username", "password", "client_id", "client_secret",
                     "app_token", "user_token", mode="before")
    @classmethod
    def _secret(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, SecretStr):
            return value
        if not isinstance(value, str):
            raise ValueError("a credential must be a reference, env:VARIABLE or file:PATH")
        base = (info.context or {}).get("base")
        return _resolve(value, base=base)

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        need = {"token": ("token",), "basic": ("username", "password"),
                "oauth": ("client_id", "client_secret"), "glpi": ("app_token", "user_token"),
                "none": ()}[self.type]
        missing = [name for name in need if getattr(self, name) is None]
        if missing:
            raise ValueError(f"auth type {self.type} needs {', '.join(missing)}")
        return self

    def secrets(self) -> list[str]:
        """The secret values, for redacting error messages."""
        return [s.get_secret_value() for s in (self.token, self.username, self.password,
                                               self.client_id, self.client_secret,
                                               self.app_token, self.user_token)
                if s is not None and s.get_secret_value()]


class RetryPolicy(_Strict):
    """Retries of one HTTP call (429, 5xx, timeouts, dropped connections), with stamina.

    Attributes
    ----------
    attempts : int
        Tries in all, the first included.
    timeout : float
        Seconds one request may take (connect, read, write), and the retries of one call
        together at most ``timeout * attempts``.
    wait_initial, wait_max, wait_jitter : float
        Exponential backoff in seconds: ``wait_initial * 2**n`` plus up to ``wait_jitter``,
        capped at ``wait_max``.
    max_retry_after : float
        Longest wait a ``Retry-After`` header may ask for (seconds); a longer one is cut to it.
        Tests set every wait to 0: nothing sleeps.
    """

    attempts: int = Field(default=5, ge=1, le=20)
    timeout: float = Field(default=30.0, gt=0)
    wait_initial: float = Field(default=0.5, ge=0)
    wait_max: float = Field(default=30.0, ge=0)
    wait_jitter: float = Field(default=1.0, ge=0)
    max_retry_after: float = Field(default=120.0, ge=0)


def cron_trigger(expression: str) -> Any:
    """APScheduler's CronTrigger for a crontab line (5 fields; 6 with seconds first).

    Raises
    ------
    ValueError
        The expression is no valid crontab line.
    """
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone="UTC")
    if len(fields) == 6:
        second, minute, hour, day, month, dow = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                           day_of_week=dow, timezone="UTC")
    raise ValueError("a schedule is a crontab line: minute hour day month weekday "
                     "(or six fields, seconds first)")


class _Endpoint(_Strict):
    url: str = Field(pattern=r"^https?://[^\s/$.?#].[^\s]*$")
    auth: Auth = Auth()
    retry: RetryPolicy = RetryPolicy()
    verify_tls: bool = True
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _no_userinfo(cls, value: str) -> str:
        if re.match(r"^https?://[^/]*@", value):
            raise ValueError("put credentials under auth, not in the URL")
        return value.rstrip("/")


class SourceConfig(_Endpoint):
    """One data source read by a connector (see the module docstring)."""

    kind: str
    priority: int = Field(default=50, ge=0, le=1000)
    mode: RunMode = RunMode.DELTA
    schedule: str | None = None
    page_size: int = Field(default=100, ge=1, le=10_000)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    force: bool = False

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in CONNECTOR_KINDS:
            raise ValueError(f"unknown connector kind {value!r}; known: "
                             f"{', '.join(sorted(CONNECTOR_KINDS))}")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            cron_trigger(value)
        return value

    @model_validator(mode="after")
    def _options(self) -> SourceConfig:
        unknown = sorted(set(self.options) - set(CONNECTOR_KINDS[self.kind]))
        if unknown:
            raise ValueError(f"options for {', '.join(unknown)}: connector {self.kind} feeds "
                             f"the importers {', '.join(CONNECTOR_KINDS[self.kind])}")
        return self

    def importer_options(self, importer: str) -> dict[str, Any]:
        """The options given for one importer kind."""
        return dict(self.options.get(importer, {}))


class TargetConfig(_Endpoint):
    """One push target: an ITSM tool's CMDB fed from ours (see :mod:`cmdb_graph.connectors.push`).

    ``mapping`` is the field mapping YAML (relative to the sources file); ``data_source`` the
    name the target records as the source (ServiceNow ``sysparm_data_source``, a choice of
    ``cmdb_ci.discovery_source``); ``batch_size`` the CIs per request.
    """

    kind: Literal["servicenow-ire", "jsm-assets-import"]
    mapping: Path
    data_source: str = "cmdb-graph"
    batch_size: int = Field(default=100, ge=1, le=10_000)


class SourcesFile(_Strict):
    """The whole sources file: ``sources`` and ``targets`` by name; ``state_dir`` holds the
    push cursors (default: ``.cmdb-graph-state`` beside the file)."""

    sources: dict[Annotated[str, Field(pattern=_NAME, max_length=100)], SourceConfig] = Field(
        default_factory=dict)
    targets: dict[Annotated[str, Field(pattern=_NAME, max_length=100)], TargetConfig] = Field(
        default_factory=dict)
    state_dir: Path | None = None
    path: Path | None = Field(default=None, exclude=True)

    def source(self, name: str) -> SourceConfig:
        """The source of that name; ``ConfigurationError`` listing the known ones."""
        try:
            return self.sources[name]
        except KeyError:
            raise ConfigurationError(f"no source {name!r} in {self.path}; known: "
                                     f"{', '.join(sorted(self.sources)) or 'none'}") from None

    def target(self, name: str) -> TargetConfig:
        """The target of that name; ``ConfigurationError`` listing the known ones."""
        try:
            return self.targets[name]
        except KeyError:
            raise ConfigurationError(f"no target {name!r} in {self.path}; known: "
                                     f"{', '.join(sorted(self.targets)) or 'none'}") from None

    def state_path(self) -> Path:
        """Where push cursors live."""
        if self.state_dir is not None:
            return self.state_dir
        base = self.path.parent if self.path is not None else Path(".")
        return base / ".cmdb-graph-state"


def _error_lines(file: Path, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{file}: {where}: {message}" if where else f"{file}: {message}")
    return lines


def load_sources(path: Path | str) -> SourcesFile:
    """Read and validate a sources file, resolving every credential reference.

    Raises
    ------
    ConfigurationError
        The file cannot be read, is no YAML mapping, or has mistakes: the message has one line
        per mistake, each naming the file and the key path (never a secret's value).
    """
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read the sources file ({exc.strerror})"
                                 ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"{file}:{where} not valid YAML") from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{file}: expected a mapping with sources and targets")
    try:
        found = SourcesFile.model_validate({**data}, context={"base": file.parent})
    except ValidationError as exc:
        raise ConfigurationError("\n".join(_error_lines(file, exc))) from None
    resolved = found.model_copy(update={"path": file})
    targets = {name: t.model_copy(update={"mapping": file.parent / t.mapping})
               if not t.mapping.is_absolute() else t for name, t in found.targets.items()}
    if found.state_dir is not None and not found.state_dir.is_absolute():
        resolved = resolved.model_copy(update={"state_dir": file.parent / found.state_dir})
    return resolved.model_copy(update={"targets": targets})
