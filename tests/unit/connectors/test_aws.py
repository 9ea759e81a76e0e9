"""The AWS EC2 connector through boto3's paginator against an EC2 stand-in on 127.0.0.1.

The stand-in answers DescribeInstances in EC2's XML, serialised from the real
``aws ec2 describe-instances`` output in ../shared/realdata with botocore's own service model.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
import pytest

from cmdb_graph.connectors.config import SourceConfig
from cmdb_graph.connectors.http import ConnectorError
from cmdb_graph.connectors.sync import sync_source
from cmdb_graph.model import RunStatus
from cmdb_graph.store import iter_cis
from cmdb_graph.store.memory import MemoryStore
from tests.helpers.standin import Reply, Request, StandIn, serve

REAL = Path(__file__).resolve().parents[3].parent / "shared" / "realdata" / "aws" / \
    "ec2-describe-instances.json"


def _xml(shape: Any, value: Any, name: str) -> str:
    if shape.type_name == "structure":
        inner = "".join(_xml(member, value[key], member.serialization.get(
            "name", key[0].lower() + key[1:])) for key, member in shape.members.items()
            if key in value)
    elif shape.type_name == "list":
        inner = "".join(_xml(shape.member, v, shape.member.serialization.get("name", "item"))
                        for v in value)
    elif shape.type_name == "boolean":
        inner = "true" if value else "false"
    else:
        inner = escape(str(value))
    return f"<{name}>{inner}</{name}>"


def _ec2(standin: StandIn, state: dict[str, bool]) -> None:
    model = botocore.session.get_session().get_service_model("ec2")
    output = model.operation_model("DescribeInstances").output_shape
    real = json.loads(REAL.read_text(encoding="utf-8"))
    second = copy.deepcopy(real["Reservations"][0])
    second["ReservationId"] = "r-0second"
    second["Instances"][0]["InstanceId"] = "i-0second0000000000"
    second["Instances"][0]["Tags"] = [{"Key": "Name", "Value": "second-instance"}]
    pages = [[real["Reservations"][0]], [second]]

    def handler(req: Request) -> Reply:
        form = {k: v[0] for k, v in __import__("urllib.parse").parse.parse_qs(
            req.body.decode()).items()}
        if "Credential=AKIDWRONG" in req.headers.get("authorization", ""):
            return Reply(401, raw=b"<Response><Errors><Error><Code>AuthFailure</Code><Message>"
                         b"AWS was not able to validate the provided access credentials"
                         b"</Message></Error></Errors><RequestID>1</RequestID></Response>",
                         headers={"Content-Type": "text/xml"})
        index = int(form.get("NextToken", "0"))
        if index == 1 and state.get("fail"):
            return Reply(500, raw=b"<Response><Errors><Error><Code>InternalError</Code>"
                         b"<Message>boom</Message></Error></Errors></Response>",
                         headers={"Content-Type": "text/xml"})
        body: dict[str, Any] = {"Reservations": pages[index]}
        if index + 1 < len(pages):
            body["NextToken"] = str(index + 1)
        xml = _xml(output, body, "DescribeInstancesResponse").replace(
            "<DescribeInstancesResponse>", '<DescribeInstancesResponse xmlns="http://ec2.'
            'amazonaws.com/doc/2016-11-15/"><requestId>r1</requestId>', 1)
        return Reply(raw=xml.encode(), headers={"Content-Type": "text/xml"})
    standin.route("POST", "/", handler)


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with serve(StandIn()) as standin:
        _ec2(standin, STATE)
        STATE.clear()
        yield standin


STATE: dict[str, bool] = {}


def _config(url: str) -> SourceConfig:
    return SourceConfig.model_validate({
        "kind": "aws-ec2", "url": url, "mode": "full", "page_size": 5,
        "params": {"endpoint": True, "regions": ["eu-west-1"]},
        "retry": {"attempts": 1, "timeout": 5}})


def test_every_page_of_describe_instances_arrives(ec2: StandIn,
                                                  memory_store: MemoryStore) -> None:
    result = sync_source(memory_store, "aws", _config(ec2.url))
    assert result.run.status is RunStatus.SUCCEEDED
    cloud_ids = {ci.cloud_id for ci in iter_cis(memory_store)}
    assert {"i-04eab418fd95d0cc7", "i-0second0000000000"} <= cloud_ids
    assert ec2.hits("/") == 2  # two pages through the paginator's NextToken


def test_a_failing_page_fails_the_run_and_a_wrong_key_is_one_line(
        ec2: StandIn, memory_store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange
    sync_source(memory_store, "aws", _config(ec2.url))
    before = {ci.ci_id: ci.model_dump(mode="json") for ci in iter_cis(memory_store)}
    STATE["fail"] = True  # the first page passes, the second answers 500

    # Act
    with pytest.raises(ConnectorError) as failed:
        sync_source(memory_store, "aws", _config(ec2.url))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDWRONG")
    with pytest.raises(ConnectorError) as refused:
        sync_source(memory_store, "aws", _config(ec2.url))

    # Assert
    assert "InternalError" in str(failed.value) and "\n" not in str(failed.value)
    assert "AuthFailure" in str(refused.value) and "secret" not in str(refused.value)
    assert {ci.ci_id: ci.model_dump(mode="json") for ci in iter_cis(memory_store)} == before
