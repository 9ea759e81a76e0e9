"""AWS EC2: every instance of the configured regions, through boto3's paginators.

Calls ``DescribeInstances`` with boto3's paginator (``NextToken`` handled by boto3) in each
region of ``params.regions`` (default: the profile's region), with the credentials of boto3's
own chain (environment, shared config ``params.profile``, instance or task role: never in the
sources file; ``auth`` stays ``none``). The IAM policy needs ``ec2:DescribeInstances``.
``url`` is only used as a custom endpoint when ``params.endpoint: true`` (tests, VPC
endpoints). boto3 retries throttling and 5xx itself (``retry.attempts`` as its
``max_attempts``, standard mode). EC2 has no modification-time filter: a delta run reads
everything too. Each page (datetimes as ISO 8601 text, as the AWS CLI prints them) goes to the
``aws-ec2`` importer.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cmdb_graph.connectors.base import Connector, Page

__all__ = ["AWSEC2Connector"]


class AWSEC2Connector(Connector):
    """AWS EC2 DescribeInstances (see the module docstring)."""

    kind = "aws-ec2"
    uses_http = False

    def _client(self, region: str | None) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(profile_name=self.param("profile", None))
        retry = self.config.retry
        config = Config(retries={"max_attempts": retry.attempts, "mode": "standard"},
                        connect_timeout=retry.timeout, read_timeout=retry.timeout)
        endpoint = self.config.url if self.param("endpoint", False) else None
        return session.client("ec2", region_name=region or session.region_name or "us-east-1",
                              endpoint_url=endpoint, config=config)

    def fetch(self, since: datetime | None) -> list[Page]:
        from botocore.exceptions import BotoCoreError, ClientError

        from cmdb_graph.connectors.http import ConnectorError

        pages: list[Page] = []
        for region in self.param("regions", [None]):
            where = region or "default region"
            try:
                client = self._client(region)
                paginator = client.get_paginator("describe_instances")
                for number, page in enumerate(paginator.paginate(
                        PaginationConfig={"PageSize": max(5, min(self.config.page_size,
                                                                 1000))}), start=1):
                    doc = json.loads(json.dumps(page, default=_iso))
                    doc.pop("ResponseMetadata", None)
                    count = sum(len(r.get("Instances", [])) for r in doc.get("Reservations", []))
                    if self.progress is not None:
                        self.progress(self.name, f"instances ({where}): page {number} "
                                                 f"({count} items)")
                    pages.append(Page("aws-ec2", doc, f"ec2:DescribeInstances {where} "
                                                      f"page {number}"))
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise ConnectorError(f"{self.name}: ec2:DescribeInstances in {where}: "
                                     f"{error.get('Code')}: {error.get('Message')}") from None
            except BotoCoreError as exc:
                raise ConnectorError(f"{self.name}: ec2:DescribeInstances in {where}: "
                                     f"{type(exc).__name__}: {exc}") from None
        return pages


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
