"""A Neo4j Community 5.26 LTS server for tests and local use, without Docker.

The server jars come from Maven Central: ``scripts/neo4j/pom.xml`` has the single dependency
``org.neo4j:neo4j:<NEO4J_VERSION>`` and ``mvn dependency:copy-dependencies`` copies it with its
runtime dependencies into a cache folder (``~/.cache/cmdb-graph/neo4j-<version>/lib``, or
``$CMDB_NEO4J_HOME/lib``). Each server *instance* has its own home folder holding ``conf/``,
``data/``, ``logs/`` and ``run/``, the console log, a pid file and a small state file; many
instances can share one cache.

The server binds 127.0.0.1 only (Bolt; HTTP and HTTPS are disabled) and runs with
authentication **enabled**: user ``neo4j`` and a password that is set before the first start
with the admin tool from the same classpath (``org.neo4j.cli.AdminTool dbms
set-initial-password``). The password is random unless given, and is kept in the instance's
``devserver.json`` (mode 0600) so that ``status`` and later starts of the same home can reuse it.

Command line (``python -m cmdb_graph.devserver``)::

    ensure-tools      install java and maven (apt-get, when root on Debian) or say what is missing
    provision         download the jars into the cache (skipped when already cached)
    start             start an instance and print ``export NEO4J_URI=...`` lines for ``eval``
    stop              stop an instance (SIGTERM, then SIGKILL after a grace period)
    status            print the exports of a running instance, exit 3 when it is not running

Environment
-----------
CMDB_NEO4J_HOME
    Cache folder holding ``lib/`` (default ``~/.cache/cmdb-graph/neo4j-<version>``).
CMDB_NEO4J_INSTANCE
    Default instance home for ``start``/``stop``/``status`` (default ``<cache>/instance``).
    ``start`` prints it, so that after ``eval`` a bare ``stop`` finds the same instance.
JAVA_HOME
    When set, ``$JAVA_HOME/bin/java`` is used instead of the ``java`` on ``PATH``.
CMDB_NEO4J_JAVA_OPTS
    Extra JVM flags for the server, appended last (so ``-Xmx2g`` overrides the 1 GiB heap).
CMDB_NEO4J_START_TIMEOUT
    Seconds ``start`` on the command line waits for Bolt (default 120).
CMDB_NEO4J_CDS
    ``0`` turns off the class-data-sharing archive. By default the first start of a Java build
    and jar set dumps an AppCDS archive of the loaded classes into ``<cache>/cds/`` when it is
    stopped cleanly; later starts map it, which cuts Neo4j's start-up time by about a third.

This module uses the standard library only; the ``neo4j`` driver is imported lazily to wait
for Bolt (without it, a raw Bolt handshake is used instead).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BOLT_WAIT_SECONDS",
    "DEFAULT_BOLT_PORT",
    "DEFAULT_USER",
    "JAVA_FLAGS",
    "NEO4J_VERSION",
    "DevServerError",
    "ServerInfo",
    "cache_dir",
    "default_home",
    "ensure_java_and_maven",
    "free_port",
    "lib_dir",
    "main",
    "provision",
    "render_conf",
    "start",
    "status",
    "stop",
    "write_conf",
]

#: Neo4j patch release; keep in sync with ``neo4j.version`` in ``scripts/neo4j/pom.xml``.
NEO4J_VERSION = "5.26.30"
DEFAULT_BOLT_PORT = 7687
DEFAULT_USER = "neo4j"
#: How long :func:`start` waits for Bolt to accept a login.
BOLT_WAIT_SECONDS = 120.0
#: How long :func:`stop` waits after SIGTERM before it sends SIGKILL.
STOP_GRACE_SECONDS = 30.0

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"
HEAP_FLAGS: tuple[str, ...] = ("-Xms512m", "-Xmx1g")
#: JVM flags. The ``--add-opens`` and netty flags are required on Java 17+; the rest follow what
#: Neo4j's own launcher passes (minus ``AlwaysPreTouch``, which would commit the heap up front).
JAVA_FLAGS: tuple[str, ...] = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
)

_MARKER = ".provisioned"
_PID_FILE = "devserver.pid"
_STATE_FILE = "devserver.json"
_CONSOLE_LOG = "neo4j-console.log"
_LOG_TAIL_LINES = 80
_EXIT_NOT_RUNNING = 3
# The dump lists every class it skips (signed jars, old class files) as a warning.
_CDS_QUIET = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")
#: Dumping the class-data archive at the first stop takes a while: wait this long at least.
_CDS_DUMP_GRACE_SECONDS = 120.0

# Children started by this process, so that stop() can reap them instead of leaving zombies.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

_POM_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.cmdb-graph</groupId>
  <artifactId>cmdb-graph-neo4j-devserver</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.neo4j</groupId>
      <artifactId>neo4j</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId>
    <version>3.8.1</version>
    <configuration><includeScope>runtime</includeScope></configuration>
  </plugin></plugins></build>
</project>
"""


class DevServerError(RuntimeError):
    """The dev server could not be provisioned, started or stopped; the message says why."""


@dataclass(frozen=True)
class ServerInfo:
    """How to reach a running dev server.

    Attributes
    ----------
    uri : str
        Bolt URI, e.g. ``bolt://127.0.0.1:7687``.
    user : str
        User name (always ``neo4j``).
    password : str
        Password of ``user``.
    pid : int
        Process id of the Java process.
    home : Path
        Instance home (conf, data, logs, pid file).
    """

    uri: str
    user: str
    password: str
    pid: int
    home: Path

    def exports(self) -> str:
        """Render the connection as shell ``export`` lines.

        Returns
        -------
        str
            Lines ``export NEO4J_URI=...`` etc., quoted for ``eval`` in a POSIX shell.
        """
        pairs = [
            ("NEO4J_URI", self.uri),
            ("NEO4J_USER", self.user),
            ("NEO4J_PASSWORD", self.password),
            ("NEO4J_PID", str(self.pid)),
            ("CMDB_NEO4J_INSTANCE", str(self.home)),
        ]
        return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in pairs)


# --------------------------------------------------------------------------- paths


def cache_dir() -> Path:
    """Return the cache folder that holds the provisioned jars.

    Returns
    -------
    Path
        ``$CMDB_NEO4J_HOME`` when set, else ``~/.cache/cmdb-graph/neo4j-<NEO4J_VERSION>``
        (``$XDG_CACHE_HOME`` replaces ``~/.cache`` when set).
    """
    env = os.environ.get("CMDB_NEO4J_HOME")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "cmdb-graph" / f"neo4j-{NEO4J_VERSION}").resolve()


def lib_dir() -> Path:
    """Return the folder of the server jars (``<cache>/lib``).

    Returns
    -------
    Path
        The jar folder; complete only when :func:`provision` has finished.
    """
    return cache_dir() / "lib"


def default_home() -> Path:
    """Return the default instance home.

    Returns
    -------
    Path
        ``$CMDB_NEO4J_INSTANCE`` when set, else ``<cache>/instance``.
    """
    env = os.environ.get("CMDB_NEO4J_INSTANCE")
    if env:
        return Path(env).expanduser().resolve()
    return cache_dir() / "instance"


def _home(home: Path | str | None) -> Path:
    return default_home() if home is None else Path(home).expanduser().resolve()


def _pom_path() -> Path:
    """The repository's pom, or a generated copy when running from an installed wheel."""
    repo_pom = Path(__file__).resolve().parent.parent / "scripts" / "neo4j" / "pom.xml"
    if repo_pom.is_file():
        return repo_pom
    generated = cache_dir() / "pom.xml"
    generated.parent.mkdir(parents=True, exist_ok=True)
    generated.write_text(_POM_TEMPLATE.format(version=NEO4J_VERSION), encoding="utf-8")
    return generated


def _err(message: str) -> None:
    sys.stderr.write(f"devserver: {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- tools


def _java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


@functools.lru_cache(maxsize=8)
def _java_version_text(java: str) -> str:
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stderr + proc.stdout


def _java_major(java: str) -> int | None:
    match = re.search(r'version "(\d+)(?:\.(\d+))?', _java_version_text(java))
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    return major


def _missing_tools() -> list[str]:
    missing: list[str] = []
    java = _java_executable()
    if java is None:
        missing.append("java (17 or 21)")
    else:
        major = _java_major(java)
        if major is None or major < 17:
            missing.append(f"java 17 or 21 (found {java}, version {major})")
    if shutil.which("mvn") is None:
        missing.append("mvn (Apache Maven)")
    return missing


def _apt_has(package: str) -> bool:
    proc = subprocess.run(
        ["apt-cache", "show", package], capture_output=True, text=True, check=False
    )
    return proc.returncode == 0 and "Package:" in proc.stdout


def ensure_java_and_maven() -> None:
    """Make sure a Java 17+ runtime and Maven are on the machine.

    When one is missing and the process runs as root on Debian (or a derivative), installs
    ``openjdk-17-jre-headless`` (``openjdk-21-jre-headless`` where 17 is not packaged) and
    ``maven`` with ``apt-get``. Neo4j 5.26 supports Java 17 and 21.

    Raises
    ------
    DevServerError
        When a tool is missing and cannot be installed here; the message says what to install.
    """
    missing = _missing_tools()
    if not missing:
        java = _java_executable()
        major = _java_major(java) if java else None
        if major is not None and major > 21:
            _err(f"warning: Java {major} is newer than Neo4j 5.26 supports (17, 21); trying it")
        return
    is_debian = Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None
    if not (is_debian and os.geteuid() == 0):
        raise DevServerError(
            "missing: "
            + ", ".join(missing)
            + ". Install a Java 17 (or 21) runtime and Apache Maven, e.g. on Debian/Ubuntu "
            "`sudo apt-get install -y openjdk-17-jre-headless maven`, then retry."
        )
    _err("installing " + ", ".join(missing) + " with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, env=env)
    jre = "openjdk-17-jre-headless"
    if not _apt_has(jre) and _apt_has("openjdk-21-jre-headless"):
        jre = "openjdk-21-jre-headless"
    subprocess.run(["apt-get", "install", "-y", jre, "maven"], check=True, env=env)
    still = _missing_tools()
    if still:
        raise DevServerError("still missing after apt-get install: " + ", ".join(still))


# --------------------------------------------------------------------------- provisioning


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_provisioned(cache: Path) -> bool:
    marker = cache / _MARKER
    if not marker.is_file() or not (cache / "lib").is_dir():
        return False
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("version") == NEO4J_VERSION


def provision(*, force: bool = False) -> Path:
    """Copy the Neo4j server jars into the cache, unless they are there already.

    Runs ``mvn -q -f scripts/neo4j/pom.xml dependency:copy-dependencies`` into a temporary
    folder, moves it to ``<cache>/lib`` and only then writes the marker file
    ``<cache>/.provisioned``; an interrupted download is therefore redone next time. A file lock
    serialises concurrent calls.

    Parameters
    ----------
    force : bool, default False
        Download again even when the marker says the cache is complete.

    Returns
    -------
    Path
        The folder of the jars (``<cache>/lib``).

    Raises
    ------
    DevServerError
        When Maven fails (its output is included) or Java/Maven are missing.
    """
    cache = cache_dir()
    lib = cache / "lib"
    with _locked(cache / ".lock"):
        if not force and _is_provisioned(cache):
            return lib
        ensure_java_and_maven()
        (cache / _MARKER).unlink(missing_ok=True)
        staging = cache / f"lib.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(_pom_path()),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ]
        _err(f"provisioning Neo4j {NEO4J_VERSION} jars into {lib}")
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise DevServerError(
                f"maven failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
            )
        jars = sorted(p.name for p in staging.glob("*.jar"))
        if not any(name.startswith(f"neo4j-{NEO4J_VERSION}") for name in jars):
            shutil.rmtree(staging, ignore_errors=True)
            raise DevServerError(f"maven copied no neo4j-{NEO4J_VERSION}.jar into {staging}")
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
        marker = {"version": NEO4J_VERSION, "jars": len(jars), "finished_at": time.time()}
        (cache / _MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        _err(f"provisioned {len(jars)} jars in {time.monotonic() - started:.1f}s")
        return lib


# --------------------------------------------------------------------------- configuration


def render_conf(home: Path | str, port: int) -> str:
    """Render ``neo4j.conf`` for an instance.

    Parameters
    ----------
    home : Path or str
        Instance home; ``data``, ``logs`` and ``run`` folders are placed under it.
    port : int
        Bolt port on 127.0.0.1.

    Returns
    -------
    str
        The configuration text: loopback only, Bolt on ``port``, HTTP and HTTPS off, auth on,
        512 MiB page cache, usage reports off, quick Bolt shutdown.
    """
    root = Path(home).resolve()
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    lines = [
        "# Written by cmdb_graph.devserver; rewritten on every start.",
        "server.default_listen_address=127.0.0.1",
        "server.default_advertised_address=127.0.0.1",
        "server.bolt.enabled=true",
        f"server.bolt.listen_address=127.0.0.1:{port}",
        f"server.bolt.advertised_address=127.0.0.1:{port}",
        "server.http.enabled=false",
        "server.https.enabled=false",
        "dbms.security.auth_enabled=true",
        "server.memory.pagecache.size=512m",
        "dbms.usage_report.enabled=false",
        f"server.directories.data={root / 'data'}",
        f"server.directories.logs={root / 'logs'}",
        f"server.directories.run={root / 'run'}",
        f"server.directories.import={root / 'import'}",
        "db.tx_log.rotation.retention_policy=2 files",
        # Without these, Bolt shutdown waits 2 x 5 s in netty's quiet period.
        "internal.dbms.bolt.netty_server_shutdown_quiet_period=0",
        "internal.dbms.bolt.netty_server_shutdown_timeout=2s",
    ]
    return "\n".join(lines) + "\n"


def write_conf(home: Path | str, port: int) -> Path:
    """Write ``<home>/conf/neo4j.conf`` (see :func:`render_conf`) and create the folders.

    Parameters
    ----------
    home : Path or str
        Instance home.
    port : int
        Bolt port on 127.0.0.1.

    Returns
    -------
    Path
        Path of the written ``neo4j.conf``.
    """
    root = Path(home).resolve()
    for sub in ("conf", "data", "logs", "run", "import"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf = root / "conf" / "neo4j.conf"
    conf.write_text(render_conf(root, port), encoding="utf-8")
    return conf


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now.

    Returns
    -------
    int
        A port chosen by the kernel.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- processes


def _pid_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_our_server(pid: int, home: Path) -> bool:
    """True when pid runs Neo4j for this home (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _pid_alive(pid)  # no /proc: trust the pid file
    args = [a.decode(errors="replace") for a in cmdline]
    return ENTRY_POINT in args and f"--home-dir={home}" in args


def _read_pid(home: Path) -> int | None:
    try:
        return int((home / _PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _read_state(home: Path) -> dict[str, object]:
    try:
        data = json.loads((home / _STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(home: Path, state: dict[str, object]) -> None:
    path = home / _STATE_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
        handle.write("\n")


def _log_tail(home: Path, lines: int = _LOG_TAIL_LINES) -> str:
    parts: list[str] = []
    for path in (home / _CONSOLE_LOG, home / "logs" / "neo4j.log"):
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        parts.append(f"--- last {lines} lines of {path} ---\n" + "\n".join(text[-lines:]))
    return "\n".join(parts) if parts else f"(no log under {home})"


def _java_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["NEO4J_HOME"] = str(home)
    env["NEO4J_CONF"] = str(home / "conf")
    return env


def _set_initial_password(java: str, lib: Path, home: Path, password: str) -> None:
    cmd = [
        java,
        *JAVA_FLAGS,
        "-Xmx256m",
        "-cp",
        f"{lib}/*",
        ADMIN_TOOL,
        "dbms",
        "set-initial-password",
        password,
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        cwd=home,
        env=_java_env(home),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    if proc.returncode != 0:
        raise DevServerError(
            f"setting the initial password failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )


def _bolt_handshake(host: str, port: int) -> bool:
    """Raw Bolt handshake: True when the server agrees on a protocol version."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(
                bytes.fromhex("6060B017")
                + bytes.fromhex("00080805")  # 5.8 down to 5.0
                + bytes.fromhex("00000004")
                + bytes(8)
            )
            answer = sock.recv(4)
    except OSError:
        return False
    return len(answer) == 4 and answer != bytes(4)


def _wait_for_bolt(info: ServerInfo, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Wait until Bolt accepts a login; raise DevServerError with the log tail otherwise."""
    deadline = time.monotonic() + timeout
    port = int(info.uri.rsplit(":", 1)[1])
    last_error = "not tried"
    try:
        import neo4j  # lazy: only this wait needs the driver
        from neo4j.exceptions import AuthError
    except ImportError:
        neo4j = None  # type: ignore[assignment]
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevServerError(
                f"Neo4j exited with code {proc.returncode} before Bolt was ready\n"
                + _log_tail(info.home)
            )
        if neo4j is None:
            if _bolt_handshake("127.0.0.1", port):
                return
            last_error = "Bolt handshake not answered"
        else:
            driver = neo4j.GraphDatabase.driver(
                info.uri, auth=(info.user, info.password), connection_timeout=3.0
            )
            try:
                driver.verify_connectivity()
                return
            except AuthError as exc:
                raise DevServerError(
                    f"Neo4j at {info.uri} rejected user {info.user!r}: {exc}. The data in "
                    f"{info.home / 'data'} was created with another password; remove the "
                    "instance home or pass the right password."
                ) from exc
            except Exception as exc:  # noqa: BLE001 - anything else: not ready yet
                last_error = f"{type(exc).__name__}: {exc}"
            finally:
                driver.close()
        time.sleep(0.5)
    raise DevServerError(
        f"Bolt at {info.uri} not ready after {timeout:.0f}s ({last_error})\n" + _log_tail(info.home)
    )


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return not _pid_alive(pid)


def _terminate(pid: int, grace: float) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds; True when SIGTERM sufficed."""
    _signal(pid, signal.SIGTERM)
    if _wait_gone(pid, grace):
        return True
    _err(f"pid {pid} still running {grace:.0f}s after SIGTERM; sending SIGKILL")
    _signal(pid, signal.SIGKILL)
    _wait_gone(pid, 10.0)
    return False


# --------------------------------------------------------------------------- class-data sharing


def _cds_flags(java: str) -> tuple[list[str], Path | None]:
    """JVM flags for an AppCDS archive of the server classes, which roughly halves start-up.

    The first start of a given Java + jar set dumps a dynamic archive at JVM exit into a
    ``.partial`` file; a clean :func:`stop` renames it into place, later starts map it. The
    archive is keyed by the Java build and the provisioning marker, and the JVM itself ignores
    (with ``-Xshare:auto``) an archive that does not match. ``CMDB_NEO4J_CDS=0`` turns it off.
    """
    if os.environ.get("CMDB_NEO4J_CDS", "1") == "0":
        return [], None
    cache = cache_dir()
    try:
        marker = (cache / _MARKER).read_text(encoding="utf-8")
    except OSError:
        return [], None
    material = "\0".join((os.path.realpath(java), _java_version_text(java), marker))
    key = hashlib.sha256(material.encode()).hexdigest()[:16]
    folder = cache / "cds"
    archive = folder / f"neo4j-{key}.jsa"
    if archive.is_file() and archive.stat().st_size > 0:
        return [*_CDS_QUIET, "-Xshare:auto", f"-XX:SharedArchiveFile={archive}"], None
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.partial-*"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > 3600:
                stale.unlink()
    partial = folder / f"{archive.name}.partial-{secrets.token_hex(4)}"
    return [*_CDS_QUIET, f"-XX:ArchiveClassesAtExit={partial}"], partial


def _finish_cds(partial: object, clean: bool) -> None:
    """After the JVM exited: keep its dumped archive if it stopped cleanly, else drop it."""
    if not isinstance(partial, str) or ".partial-" not in partial:
        return
    path = Path(partial)
    final = path.with_name(path.name.split(".partial-", 1)[0])
    with contextlib.suppress(OSError):
        if clean and path.is_file() and path.stat().st_size > 0:
            os.replace(path, final)
        else:
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- public API


def start(
    port: int = DEFAULT_BOLT_PORT,
    home: Path | str | None = None,
    *,
    password: str | None = None,
    timeout: float = BOLT_WAIT_SECONDS,
) -> ServerInfo:
    """Start a Neo4j instance bound to 127.0.0.1 and wait until Bolt accepts a login.

    Provisions the jars first when needed. The Java process runs in its own session (it
    outlives the caller) with stdout and stderr in ``<home>/neo4j-console.log``; its pid is in
    ``<home>/devserver.pid``.

    Parameters
    ----------
    port : int, default 7687
        Bolt port on 127.0.0.1; ``0`` picks a free one.
    home : Path or str, optional
        Instance home (created when missing); default :func:`default_home`.
    password : str, optional
        Password for user ``neo4j``. Default: the one stored in the home, else a random one.
        It can only be chosen before the home's first start.
    timeout : float, default 120
        Seconds to wait for Bolt.

    Returns
    -------
    ServerInfo
        URI, user, password, pid and home of the running server.

    Raises
    ------
    DevServerError
        When the port is taken, the instance already runs, the password is unknown, Java exits
        early or Bolt is not ready in time (the log tail is included; the process is stopped).
    """
    root = _home(home)
    root.mkdir(parents=True, exist_ok=True)
    pid = _read_pid(root)
    if pid is not None and _pid_alive(pid) and _is_our_server(pid, root):
        raise DevServerError(
            f"an instance already runs in {root} (pid {pid}); stop it first: "
            f"python -m cmdb_graph.devserver stop --home {shlex.quote(str(root))}"
        )
    (root / _PID_FILE).unlink(missing_ok=True)

    if port == 0:
        port = free_port()
    elif not _port_free(port):
        raise DevServerError(
            f"port 127.0.0.1:{port} is already in use; stop whatever listens there, choose "
            "another port, or use port 0 to pick a free one"
        )

    lib = provision()
    java = _java_executable()
    if java is None:
        raise DevServerError("java not found (install a Java 17 or 21 runtime)")

    state = _read_state(root)
    stored = state.get("password")
    initialised = (root / "data" / "databases" / "system").exists()
    if password is None:
        password = stored if isinstance(stored, str) and stored else None
    if password is None:
        if initialised:
            raise DevServerError(
                f"{root} holds an existing database but no stored password; pass the "
                "password or remove the instance home"
            )
        # Hex: a password starting with "-" would read as an option of set-initial-password.
        password = secrets.token_hex(18)

    write_conf(root, port)
    if not initialised:
        _set_initial_password(java, lib, root, password)
    uri = f"bolt://127.0.0.1:{port}"
    cds_flags, cds_partial = _cds_flags(java)
    _write_state(
        root,
        {
            "uri": uri,
            "user": DEFAULT_USER,
            "password": password,
            "port": port,
            "cds_partial": str(cds_partial) if cds_partial else None,
        },
    )

    cmd = [
        java,
        *JAVA_FLAGS,
        *HEAP_FLAGS,
        *cds_flags,
        *shlex.split(os.environ.get("CMDB_NEO4J_JAVA_OPTS", "")),
        "-cp",
        f"{lib}/*",
        ENTRY_POINT,
        f"--home-dir={root}",
        f"--config-dir={root / 'conf'}",
        "--console-mode",
    ]
    with (root / _CONSOLE_LOG).open("ab") as log:
        log.write(f"\n=== devserver start: {shlex.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=_java_env(root),
            start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    (root / _PID_FILE).write_text(f"{proc.pid}\n")
    info = ServerInfo(uri=uri, user=DEFAULT_USER, password=password, pid=proc.pid, home=root)
    try:
        _wait_for_bolt(info, proc, timeout)
    except BaseException:
        _terminate(proc.pid, 10.0)
        _finish_cds(str(cds_partial) if cds_partial else None, clean=False)
        (root / _PID_FILE).unlink(missing_ok=True)
        raise
    return info


def stop(home: Path | str | None = None, *, grace: float = STOP_GRACE_SECONDS) -> bool:
    """Stop the instance in ``home``: SIGTERM, then SIGKILL after ``grace`` seconds.

    Parameters
    ----------
    home : Path or str, optional
        Instance home; default :func:`default_home`.
    grace : float, default 30
        Seconds between SIGTERM and SIGKILL (at least 120 when the JVM still has to dump its
        class-data archive, see ``CMDB_NEO4J_CDS`` in the module docstring).

    Returns
    -------
    bool
        True when a running server was stopped, False when none was running.
    """
    root = _home(home)
    pid = _read_pid(root)
    if pid is None:
        return False
    running = _pid_alive(pid) and _is_our_server(pid, root)
    if running:
        partial = _read_state(root).get("cds_partial")
        if partial:
            grace = max(grace, _CDS_DUMP_GRACE_SECONDS)
        clean = _terminate(pid, grace)
        _finish_cds(partial, clean)
    _CHILDREN.pop(pid, None)
    (root / _PID_FILE).unlink(missing_ok=True)
    return running


def status(home: Path | str | None = None) -> ServerInfo | None:
    """Describe the instance in ``home`` if its process is running.

    Parameters
    ----------
    home : Path or str, optional
        Instance home; default :func:`default_home`.

    Returns
    -------
    ServerInfo or None
        Connection details when the Java process runs (Bolt may still be starting), else None.
    """
    root = _home(home)
    pid = _read_pid(root)
    if pid is None or not (_pid_alive(pid) and _is_our_server(pid, root)):
        return None
    state = _read_state(root)
    uri, user, password = state.get("uri"), state.get("user"), state.get("password")
    if not (isinstance(uri, str) and isinstance(user, str) and isinstance(password, str)):
        return None
    return ServerInfo(uri=uri, user=user, password=password, pid=pid, home=root)


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cmdb_graph.devserver",
        description=f"Neo4j Community {NEO4J_VERSION} for tests and local use (no Docker).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure-tools", help="install or check java and maven")
    prov = sub.add_parser("provision", help="download the jars into the cache")
    prov.add_argument("--force", action="store_true", help="download again")
    st = sub.add_parser("start", help="start; prints export lines for eval")
    st.add_argument("--port", type=int, default=DEFAULT_BOLT_PORT, help="0 picks a free port")
    st.add_argument("--home", type=Path, default=None, help="instance home")
    st.add_argument("--password", default=None, help="password (first start of a home only)")
    st.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("CMDB_NEO4J_START_TIMEOUT", BOLT_WAIT_SECONDS)),
        help="seconds to wait for Bolt (default $CMDB_NEO4J_START_TIMEOUT or 120)",
    )
    sp = sub.add_parser("stop", help="stop (SIGTERM, then SIGKILL)")
    sp.add_argument("--home", type=Path, default=None, help="instance home")
    sp.add_argument("--grace", type=float, default=STOP_GRACE_SECONDS)
    ss = sub.add_parser("status", help="print exports if running (exit 3 if not)")
    ss.add_argument("--home", type=Path, default=None, help="instance home")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 on error, 3 from ``status``/``stop`` when not running.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "ensure-tools":
            ensure_java_and_maven()
        elif args.command == "provision":
            _err(f"jars in {provision(force=args.force)}")
        elif args.command == "start":
            started = time.monotonic()
            info = start(args.port, args.home, password=args.password, timeout=args.timeout)
            _err(
                f"Neo4j {NEO4J_VERSION} ready at {info.uri} (pid {info.pid}) "
                f"in {time.monotonic() - started:.1f}s; home {info.home}"
            )
            sys.stdout.write(info.exports())
        elif args.command == "stop":
            if not stop(args.home, grace=args.grace):
                _err(f"no running instance in {_home(args.home)}")
                return _EXIT_NOT_RUNNING
        elif args.command == "status":
            found = status(args.home)
            if found is None:
                _err(f"no running instance in {_home(args.home)}")
                return _EXIT_NOT_RUNNING
            sys.stdout.write(found.exports())
    except DevServerError as exc:
        _err(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
