"""Why pods are not running, one line each, for `status` to print: a user whose pod hangs sees
why (an image not loaded on the node is the usual reason) without reading kubelet's Events."""

from __future__ import annotations

import json
from typing import Any

from deploy.localkube.layout import Layout
from deploy.localkube.probes import kubectl


def pod_problems(layout: Layout) -> list[str]:
    """A line per pod that is not Running and Ready, from the live cluster."""
    pods = json.loads(kubectl(layout, "get", "pods", "-A", "-o", "json"))["items"]
    events = json.loads(
        kubectl(layout, "get", "events", "-A", "--field-selector", "type=Warning", "-o", "json")
    )["items"]
    return explain_pods(pods, events)


def explain_pods(pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[str]:
    """Pure: a line per pod that is neither Running and Ready nor Succeeded, with the reason."""
    lines = []
    for pod in pods:
        meta, st = pod["metadata"], pod.get("status", {})
        statuses = st.get("containerStatuses") or []
        phase = st.get("phase")
        ready = phase == "Running" and statuses and all(c.get("ready") for c in statuses)
        if phase == "Succeeded" or ready:
            continue
        where = f"pod {meta['namespace']}/{meta['name']} ({phase})"
        waiting = [c["state"]["waiting"] for c in statuses if (c.get("state") or {}).get("waiting")]
        reason = waiting[0].get("reason") if waiting else None
        if waiting and waiting[0].get("message"):
            lines.append(f"{where}: {reason}: {waiting[0]['message']}")
            continue
        mine = [e for e in events if e["involvedObject"].get("uid") == meta.get("uid")]
        mine.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        # kubelet's own Event for the waiting reason says the most ("Container image … is not
        # present with pull policy of Never"); its generic "Failed: Error: X" says least, but
        # names X, which finds that Event while the status still lags behind ("ContainerCreating").
        wanted = {reason} if reason else set()
        wanted |= {
            e["message"].removeprefix("Error: ")
            for e in mine
            if e.get("reason") == "Failed" and (e.get("message") or "").startswith("Error: ")
        }
        best = [e for e in mine if e.get("reason") in wanted] or mine
        if best:
            lines.append(f"{where}: {best[-1].get('reason')}: {best[-1].get('message')}")
        else:
            lines.append(f"{where}: {reason or 'not ready yet'}")
    return lines
