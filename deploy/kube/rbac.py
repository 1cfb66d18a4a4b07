"""The Kubernetes permissions Eddyline uses — what the Helm chart's Role must grant.

`CONTROLLER_RULES` is every request the Kubernetes-mode controller makes in its namespace
(tests/k8s runs the controller with a service account bound to exactly these). `USER_RULES` is
what `eddyline submit|list|describe|scale|suspend|resume|savepoint|delete --kube` need.
"""

from __future__ import annotations

from typing import Any

CONTROLLER_RULES: list[dict[str, Any]] = [
    # the watch cache (list + watch), reads under the lease (get), the finalizer (update)
    {
        "apiGroups": ["eddyline.dev"],
        "resources": ["flinkjobs"],
        "verbs": ["get", "list", "watch", "update"],
    },
    # status writes: PUT of the status subresource at the resourceVersion read
    {"apiGroups": ["eddyline.dev"], "resources": ["flinkjobs/status"], "verbs": ["update"]},
    # one Lease per job: the controller acting on it
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "update", "delete"],
    },
    # an Event for each decision and action
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    # more TaskManagers when a job needs more slots (--taskmanager-deployment)
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]},
    # fewer TaskManagers: list the Deployment's Pods, mark the idle ones to go first
    # (the pod-deletion-cost annotation; deploy/kube/runtime.py)
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]},
]

USER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["eddyline.dev"],
        "resources": ["flinkjobs"],
        "verbs": ["get", "list", "watch", "create", "update", "delete"],
    },
]
