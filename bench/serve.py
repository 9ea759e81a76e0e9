"""The API server of the GraphQL benchmark: ``python -m bench.serve --port P``.

Store from the environment as ``cmdb-graph serve`` reads it (``CMDB_STORE``,
``CMDB_DATABASE_PATH``, ``CMDB_NEO4J_*``); uvicorn on 127.0.0.1 with the served API's
configuration (:func:`cmdb_graph.api.server.server_config`), one worker, no access log.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    """Serve until terminated."""
    import uvicorn

    from cmdb_graph.api.app import create_app
    from cmdb_graph.api.server import server_config
    from cmdb_graph.settings import Settings
    from cmdb_graph.store.factory import open_store

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    settings = Settings()
    store = open_store(settings)
    config = server_config(create_app(settings, store), settings, host="127.0.0.1",
                           port=args.port, log_level="warning", access_log=False)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
