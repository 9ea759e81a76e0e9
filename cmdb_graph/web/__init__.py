"""The web UI: the dependency map at ``/``, its scripts and styles under ``/static``, and
GraphiQL (at ``/graphql``) with its assets served from here instead of a CDN.

Everything the pages load is in ``static/``: our own plain JavaScript modules (no build
step) and, under ``static/vendor/``, the third-party files with their licences and versions
(``vendor/README.md``; refreshed by ``scripts/vendor-web-assets``). The map talks only to
``/graphql``, with the same API keys as any other client.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

__all__ = ["STATIC", "graphiql_html", "mount_web"]

#: The folder served under ``/static``.
STATIC = Path(__file__).parent / "static"

#: The map page's policy: scripts, styles, images and requests from this server only.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)

#: A CDN address of a file in an npm package, as strawberry's GraphiQL page names them.
_CDN = re.compile(r"https://[^/\"]+/((?:@[^/@\"]+/)?[^/@\"]+@[^/\"]+/[^\"]+)")


def mount_web(app: FastAPI) -> None:
    """Serve the map at ``/`` and the files of ``static/`` under ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        """The dependency map."""
        return FileResponse(
            STATIC / "index.html",
            headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"},
        )


@lru_cache(maxsize=1)
def graphiql_html() -> str:
    """Strawberry's GraphiQL page with every CDN address replaced by our vendored copy.

    The files are byte-identical to the CDN's (the page's subresource-integrity hashes still
    hold); ``scripts/vendor-web-assets`` vendors exactly the packages and versions the page
    names.

    Raises
    ------
    FileNotFoundError
        A file the page names is not vendored (strawberry was upgraded: run
        ``scripts/vendor-web-assets``).
    """
    html = get_graphql_ide_html("graphiql")
    for path in _CDN.findall(html):
        if not (STATIC / "vendor" / path).is_file():
            raise FileNotFoundError(f"GraphiQL needs vendor/{path}: run scripts/vendor-web-assets")
    return _CDN.sub(r"/static/vendor/\1", html)
