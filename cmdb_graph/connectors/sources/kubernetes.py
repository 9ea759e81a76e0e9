"""Kubernetes API: the objects the manifests importer reads, straight from the cluster.

Lists Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods, Services,
ConfigMaps and PersistentVolumeClaims (``GET /apis/apps/v1/deployments?limit=N``, ...; per
namespace with ``params.namespaces``) and the cluster's PersistentVolumes, following
``metadata.continue`` until it is empty, with a service account's token (``Authorization:
Bearer``; a read-only ClusterRole with get/list on those resources). The API has no
modification-time filter: a delta run lists everything too. All list answers
(``DeploymentList``, ...) go to the ``kubernetes`` importer as one input, because Services
select workloads, workloads read ConfigMaps and mount claims, and claims bind volumes across
lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cmdb_graph.connectors.base import Connector, Page
from importers.readers import Documents

__all__ = ["KubernetesConnector", "RESOURCES"]

#: API group path -> resources listed
RESOURCES: tuple[tuple[str, str], ...] = (
    ("/apis/apps/v1", "deployments"), ("/apis/apps/v1", "statefulsets"),
    ("/apis/apps/v1", "daemonsets"), ("/apis/apps/v1", "replicasets"),
    ("/apis/batch/v1", "jobs"), ("/apis/batch/v1", "cronjobs"),
    ("/api/v1", "pods"), ("/api/v1", "services"), ("/api/v1", "configmaps"),
    ("/api/v1", "persistentvolumeclaims"), ("/api/v1", "persistentvolumes"),
)
#: Resources that belong to no namespace (listed once, also with ``params.namespaces``).
CLUSTER_SCOPED = frozenset({"persistentvolumes"})


class KubernetesConnector(Connector):
    """Kubernetes API (see the module docstring)."""

    kind = "kubernetes"

    def fetch(self, since: datetime | None) -> list[Page]:
        lists: list[Any] = []
        namespaces = self.param("namespaces", None) or [None]
        for group, resource in RESOURCES:
            for namespace in [None] if resource in CLUSTER_SCOPED else namespaces:
                path = (f"{group}/namespaces/{namespace}/{resource}" if namespace
                        else f"{group}/{resource}")
                lists.extend(self._list(path, resource))
        return [Page("kubernetes", Documents.of(lists), f"{self.config.url} (cluster)")]

    def _list(self, path: str, resource: str) -> list[Any]:
        out: list[Any] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.config.page_size}
            if token:
                params["continue"] = token
            body, _ = self.http.get_page(path, what=resource, params=params)
            if not isinstance(body, dict) or not str(body.get("kind", "")).endswith("List"):
                raise self.http.error(f"GET {path}: not a Kubernetes list answer")
            out.append(body)
            meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
            token = meta.get("continue") if isinstance(meta, dict) else None
            if not token:
                return out
