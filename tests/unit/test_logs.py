"""The server's log handler: what reaches it."""

from __future__ import annotations

import io
import json
import logging

from cmdb_graph.logs import configure_logging
from cmdb_graph.settings import Settings


def test_httpx_request_lines_stay_out_and_ours_go_in() -> None:
    # Arrange: the server's JSON log into a buffer
    buffer = io.StringIO()
    configure_logging(Settings(log_level="INFO", log_format="json"), stream=buffer)

    # Act: what a webhook POST makes httpx log, and a line of ours
    logging.getLogger("httpx").info('HTTP Request: POST http://127.0.0.1:9/hook "200 OK"')
    logging.getLogger("httpx").warning("a warning of httpx")
    logging.getLogger("cmdb_graph.events").info("delivered")

    # Assert
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [(x["logger"], x["message"]) for x in lines] == [
        ("httpx", "a warning of httpx"), ("cmdb_graph.events", "delivered")]
