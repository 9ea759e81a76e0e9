"""Headless Chromium for the web UI: Debian's ``chromium`` driven by Playwright (nothing is
downloaded), and a demo-estate API server to point it at.

Used by the browser test (``tests/e2e/test_web_ui.py``), the UI benchmark and the README's
screenshots (:mod:`bench.ui`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

#: The browser (Debian's package); ``CMDB_CHROMIUM`` overrides it.
CHROMIUM = os.environ.get("CMDB_CHROMIUM", "/usr/bin/chromium")

#: Chromium on a machine without internet access: no background connections (without these
#: flags its connections are refused and it stalls), no GPU, no sandbox (CI runs as root).
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
]


def have_chromium() -> bool:
    """Whether the browser and its driver are installed."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).is_file()


@contextmanager
def chromium(width: int = 1500, height: int = 900) -> Iterator[Any]:
    """A Playwright browser context in headless Chromium with a fresh profile folder."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="cmdb-chromium-") as profile, \
            sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": width, "height": height}, accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def demo_server(size: int, workdir: Path, **settings: str) -> Iterator[str]:
    """``cmdb-graph demo --size SIZE`` written to ``workdir``, served by ``bench.serve`` on a
    free 127.0.0.1 port (``settings``: further ``CMDB_*`` variables, e.g.
    ``CMDB_API_KEYS``); yields its base URL and stops it afterwards."""
    snapshot = workdir / "demo.db"
    env = {**os.environ, "CMDB_STORE": "memory", "CMDB_DATABASE_PATH": str(snapshot),
           **settings}
    env.pop("CMDB_NEO4J_URI", None)
    cli = "import sys; from cmdb_graph.cli import main; sys.argv[0] = 'cmdb-graph'; main()"
    subprocess.run([sys.executable, "-c", cli, "demo", "--size", str(size),
                    "--db", str(snapshot), "--replace"],
                   check=True, env=env, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read() if proc.stderr and proc.poll() is not None else b""
                raise RuntimeError(f"the demo server did not start: {err[-2000:]!r}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
