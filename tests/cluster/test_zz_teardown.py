"""Last: `make cluster-down` (node.down) leaves the machine as it was before `up` — no process,
mount, network link, route, iptables rule, network namespace or cgroup of the cluster, and every
kernel setting kubelet or kube-proxy changed put back."""

from __future__ import annotations

import json
import os
import time

import psutil
import pytest

from deploy.localkube import host, images, node
from deploy.localkube.__main__ import image_archive, image_ref
from deploy.localkube.layout import NODE_NAME, PAUSE_IMAGE
from deploy.localkube.procs import run
from tests.cluster.conftest import RealCluster


def test_a_second_up_while_it_runs_has_nothing_to_do(real_cluster: RealCluster) -> None:
    layout = real_cluster.layout
    before = node.load_state(layout)
    assert before is not None
    result = node.up(layout, {image_ref(): image_archive()})
    assert result.already_running
    assert result.images_loaded == []  # the same archive is not imported again
    after = node.load_state(layout)
    assert after is not None
    assert [(p.name, p.pid) for p in after.procs] == [(p.name, p.pid) for p in before.procs]
    assert all(p.alive() for p in after.procs)


def test_no_image_the_node_cannot_pull_again_can_be_collected(real_cluster: RealCluster) -> None:
    """A CI run once lost the pause image mid-suite, and every pod after that failed to start.
    The running kubelet has image GC off (what Debian's containerd 1.6.20 needs), and our images
    carry the pinned label (what newer containerds report to kubelet)."""
    configz = real_cluster.kube.kubectl_run(
        "get", "--raw", f"/api/v1/nodes/{NODE_NAME}/proxy/configz"
    ).stdout
    kubelet = json.loads(configz)["kubeletconfig"]
    assert kubelet["imageGCHighThresholdPercent"] == 100, kubelet
    assert kubelet.get("imageMaximumGCAge", "0s") in ("0s", 0), kubelet
    listing = run(images.ctr(real_cluster.layout, "images", "ls"))
    labels = {
        line.split()[0]: line.split()[-1] for line in listing.splitlines()[1:] if line.strip()
    }
    for ref in (PAUSE_IMAGE, image_ref()):
        name = images.normalised(ref)
        assert name in labels, f"{name} is not on the node:\n{listing}"
        assert images.PINNED_LABEL in labels[name].split(","), f"{name} is not pinned:\n{listing}"


def test_cluster_down_leaves_the_machine_as_it_was(real_cluster: RealCluster) -> None:
    layout = real_cluster.layout
    if not real_cluster.started_here or real_cluster.before is None:
        pytest.skip(
            "the cluster was started outside the tests (make cluster-up) and is left running; "
            "teardown is checked when the tests start it themselves, as in CI"
        )
    state = node.load_state(layout)
    assert state is not None
    recorded = state.procs
    result = node.down(layout)
    real_cluster.stopped = result.stopped
    assert set(result.stopped) == set(node.ORDER)
    after = host.snapshot(layout.root)
    assert host.diff_snapshots(real_cluster.before, after) == []
    assert [p.name for p in recorded if p.alive()] == []
    root = str(layout.root.resolve())

    def naming_root() -> list[tuple[int, str]]:
        return [
            (p.info["pid"], " ".join(p.info.get("cmdline") or [])[:200])
            for p in psutil.process_iter(["pid", "cmdline"])
            if p.info["pid"] != os.getpid()
            and any(root in part for part in (p.info.get("cmdline") or []))
        ]

    # A client the tests started (a kubectl of theirs) may take a moment to notice the API
    # server is gone; the cluster's own processes were checked by PID above.
    deadline = time.monotonic() + 30
    while naming_root() and time.monotonic() < deadline:
        time.sleep(1)
    assert naming_root() == [], f"processes still naming {root}"
    assert not node.status(layout).running
    # A second `down` has nothing to do.
    assert not node.down(layout).was_running
