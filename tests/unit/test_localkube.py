"""The local cluster's pure parts: its configuration files bind to loopback or the bridge only,
DNS forwards nothing, containerd never pulls, the pause image archive is well formed, and the
host checks name what is wrong in one line."""

from __future__ import annotations

import json
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.errors import ClusterError
from deploy.localkube import checks, configs, host, images, node, procs, record
from deploy.localkube.layout import BRIDGE, GATEWAY, PAUSE_IMAGE, POD_CIDR, Layout
from deploy.localkube.pods import explain_pods


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "cluster")


def test_containerd_has_its_own_paths_and_never_pulls(layout: Layout) -> None:
    conf = tomllib.loads(configs.containerd(layout))
    assert conf["root"] == str(layout.containerd_root)
    assert conf["grpc"]["address"] == str(layout.containerd_socket)
    cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == PAUSE_IMAGE
    assert cri["stream_server_address"] == "127.0.0.1"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is False
    # An image that is not loaded fails on the spot: the only "registry" is a closed local port.
    assert cri["registry"]["mirrors"]["docker.io"]["endpoint"] == ["http://127.0.0.1:9"]


def test_kubelet_listens_on_the_bridge_and_loopback_only(layout: Layout, tmp_path: Path) -> None:
    conf = yaml.safe_load(configs.kubelet(layout, 12345, tmp_path / "resolv.conf"))
    assert conf["address"] == GATEWAY
    assert conf["healthzBindAddress"] == "127.0.0.1"
    assert conf["readOnlyPort"] == 0
    assert conf["failCgroupV1"] is False
    assert conf["cgroupDriver"] == "cgroupfs"
    assert conf["clusterDNS"] == [GATEWAY]
    assert conf["authentication"]["anonymous"]["enabled"] is False
    assert conf["authorization"]["mode"] == "Webhook"


def test_kube_proxy_leaves_conntrack_alone_and_binds_loopback(tmp_path: Path) -> None:
    conf = yaml.safe_load(configs.kube_proxy(tmp_path / "kc", 1, 2))
    assert conf["healthzBindAddress"] == "127.0.0.1:1"
    assert conf["metricsBindAddress"] == "127.0.0.1:2"
    assert conf["clusterCIDR"] == POD_CIDR
    assert conf["conntrack"]["maxPerCore"] == 0
    assert conf["nodePortAddresses"] == [f"{GATEWAY}/32"]


def test_cluster_dns_answers_cluster_names_and_forwards_nothing(tmp_path: Path) -> None:
    corefile = configs.corefile(tmp_path / "kc", 1, 2)
    assert "forward" not in corefile
    assert "proxy" not in corefile
    assert corefile.count(f"bind {GATEWAY}") == 2
    assert "rcode NXDOMAIN" in corefile
    assert "health 127.0.0.1:1" in corefile


def test_cni_uses_the_bridge_without_masquerading(layout: Layout) -> None:
    conf = json.loads(configs.cni(layout))
    [bridge] = conf["plugins"]
    assert bridge["bridge"] == BRIDGE
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": POD_CIDR, "gateway": GATEWAY}]]
    assert bridge["ipam"]["dataDir"] == str(layout.cni_ipam)


def test_pause_archive_is_a_docker_save_with_one_layer(tmp_path: Path) -> None:
    binary = tmp_path / "pause"
    binary.write_bytes(b"\x7fELF fake")
    archive = images.pause_archive(binary, tmp_path / "pause.tar")
    with tarfile.open(archive) as tar:
        [manifest] = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest["RepoTags"] == [PAUSE_IMAGE]
        config = json.load(tar.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        assert config["config"]["Entrypoint"] == ["/pause"]
        layer = tar.extractfile(manifest["Layers"][0])
        assert layer is not None
        with tarfile.open(fileobj=layer) as inner:
            member = inner.getmember("pause")
            assert member.mode == 0o755


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("eddyline:0.1.0", "docker.io/library/eddyline:0.1.0"),
        ("eddyline.local/pause:1", "eddyline.local/pause:1"),
        ("someone/tool:2", "docker.io/someone/tool:2"),
        ("localhost/x:1", "localhost/x:1"),
    ],
)
def test_image_names_as_containerd_stores_them(ref: str, name: str) -> None:
    assert images.normalised(ref) == name


def test_iptables_rules_are_split_like_a_shell_would() -> None:
    rule = '-A KUBE-SERVICES -m comment --comment "default/kubernetes:https cluster IP" -j X'
    assert host._split(rule)[5] == "default/kubernetes:https cluster IP"


def test_snapshot_differences_are_named() -> None:
    before = {"links": ["lo", "eth0"], "sysctls": {"vm/overcommit_memory": "0"}}
    same = {"links": ["lo", "eth0"], "sysctls": {"vm/overcommit_memory": "0"}}
    after = {"links": ["lo", "eth0", BRIDGE], "sysctls": {"vm/overcommit_memory": "1"}}
    assert host.diff_snapshots(before, same) == []
    diff = host.diff_snapshots(before, after)
    assert len(diff) == 2
    assert BRIDGE in diff[0]
    assert "overcommit" in diff[1]


def test_missing_binaries_are_named_with_the_command_that_builds_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(host, "is_root", lambda: True)
    monkeypatch.setattr(checks, "BIN_DIR", tmp_path)
    with pytest.raises(ClusterError, match=r"missing in .*kubelet.*make kube-tools"):
        checks.preflight()


def test_it_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "is_root", lambda: False)
    with pytest.raises(ClusterError, match="needs root"):
        checks.preflight()


def test_a_taken_subnet_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    routes = "default via 192.0.2.1 dev eth0\n10.234.0.0/16 dev wg0 scope link\n"
    monkeypatch.setattr(host, "run", lambda argv, **_: routes)
    with pytest.raises(
        ClusterError, match=r"10\.234\.0\.0/24 is taken: route `10\.234\.0\.0/16 dev wg0"
    ):
        host.check_subnets_free()


def test_our_own_bridge_route_is_not_a_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    routes = f"10.234.0.0/24 dev {BRIDGE} proto kernel scope link src {GATEWAY}\n"
    monkeypatch.setattr(host, "run", lambda argv, **_: routes)
    host.check_subnets_free()


def test_a_second_up_or_down_waits_for_the_first(layout: Layout) -> None:
    with (
        record.locked(layout),
        pytest.raises(ClusterError, match="another `up` or `down`"),
        record.locked(layout),
    ):
        pass


def test_a_component_that_dies_while_starting_is_named_with_its_log(tmp_path: Path) -> None:

    proc = procs.start(
        "kubelet", ["sh", "-c", "echo 'failed to run Kubelet: boom'; exit 3"], tmp_path
    )
    with pytest.raises(ClusterError) as err:
        procs.wait_until(proc, "healthy /healthz", lambda: "not yet", timeout=30)
    message = str(err.value)
    assert message.startswith("kubelet exited while waiting for healthy /healthz")
    assert str(tmp_path / "kubelet.log") in message
    assert "failed to run Kubelet: boom" in message


def test_a_component_that_never_gets_healthy_is_named_with_the_last_reason(tmp_path: Path) -> None:

    proc = procs.start("coredns", ["sleep", "30"], tmp_path)
    try:
        with pytest.raises(
            ClusterError, match=r"coredns: no ready /ready after 1 s \(last: HTTP 503"
        ):
            procs.wait_until(proc, "ready /ready", lambda: "HTTP 503", timeout=1)
    finally:
        procs.stop(proc)
    assert not proc.alive()


def test_a_pod_whose_image_is_not_loaded_is_explained_with_its_reason() -> None:
    pods = [
        {
            "metadata": {"namespace": "ns", "name": "ok", "uid": "1"},
            "status": {"phase": "Running", "containerStatuses": [{"ready": True}]},
        },
        {
            "metadata": {"namespace": "ns", "name": "stuck", "uid": "2"},
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "ready": False,
                        "state": {
                            "waiting": {
                                "reason": "ErrImageNeverPull",
                                "message": 'Container image "eddyline:9.9" is not present with '
                                "pull policy of Never",
                            }
                        },
                    }
                ],
            },
        },
        {
            "metadata": {"namespace": "ns", "name": "unscheduled", "uid": "3"},
            "status": {"phase": "Pending"},
        },
    ]
    events = [
        {
            "involvedObject": {"uid": "3"},
            "reason": "FailedScheduling",
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
            "lastTimestamp": "2026-12-02T10:00:00Z",
        }
    ]
    assert explain_pods(pods, events) == [
        'pod ns/stuck (Pending): ErrImageNeverPull: Container image "eddyline:9.9" is not present '
        "with pull policy of Never",
        "pod ns/unscheduled (Pending): FailedScheduling: "
        "0/1 nodes are available: 1 Insufficient cpu.",
    ]


def test_a_cluster_another_checkout_runs_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = Layout(tmp_path / "other")
    other.root.mkdir()
    me = procs.start("kubelet", ["sleep", "30"], tmp_path)
    try:
        record.save_state(other, record.ClusterState(server="https://x", procs=[me]))
        owner = tmp_path / "owner"
        owner.write_text(f"{other.root.resolve()}\n")
        monkeypatch.setattr(record, "OWNER_FILE", owner)
        with pytest.raises(ClusterError, match=r"a local cluster from .*other is running"):
            record.check_owner(Layout(tmp_path / "mine"))
        record.check_owner(other)  # its own folder: fine
    finally:
        procs.stop(me)
    record.check_owner(Layout(tmp_path / "mine"))  # stopped: no longer in the way


NEVER_PULLED = 'Container image "eddyline:9.9" is not present with pull policy of Never'


def _waiting_pod(uid: str, reason: str) -> dict[str, Any]:
    """A Pending pod whose one container waits for `reason`, with no message in its status."""
    waiting = {"reason": reason}
    return {
        "metadata": {"namespace": "ns", "name": "stuck", "uid": uid},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{"ready": False, "state": {"waiting": waiting}}],
        },
    }


def _event(uid: str, reason: str, message: str, at: str) -> dict[str, Any]:
    return {
        "involvedObject": {"uid": uid},
        "reason": reason,
        "message": message,
        "lastTimestamp": f"2026-12-02T{at}Z",
    }


def _never_pulled_events(uid: str) -> list[dict[str, Any]]:
    """What kubelet records for an image it may not pull: its own Event, then the generic one."""
    return [
        _event(uid, "ErrImageNeverPull", NEVER_PULLED, "10:00:00"),
        _event(uid, "Failed", "Error: ErrImageNeverPull", "10:00:01"),
    ]


def test_the_event_for_the_waiting_reason_is_quoted_when_the_status_has_no_message() -> None:
    pods = [_waiting_pod("2", "ErrImageNeverPull")]
    assert explain_pods(pods, _never_pulled_events("2")) == [
        f"pod ns/stuck (Pending): ErrImageNeverPull: {NEVER_PULLED}"
    ]


def test_the_event_a_failed_event_names_is_quoted_while_the_status_lags_behind() -> None:
    # kubelet's status update has not landed yet: the container still waits "ContainerCreating".
    pods = [_waiting_pod("3", "ContainerCreating")]
    scheduled = _event("3", "Scheduled", "Successfully assigned ns/stuck to node", "09:59:59")
    assert explain_pods(pods, [scheduled, *_never_pulled_events("3")]) == [
        f"pod ns/stuck (Pending): ErrImageNeverPull: {NEVER_PULLED}"
    ]


def test_node_keeps_the_names_the_cli_and_the_cluster_tests_use() -> None:
    # `python -m deploy.localkube` and tests/cluster reach the cluster through this module.
    for name in ("up", "down", "status", "load_state", "ORDER", "ClusterState", "explain_pods"):
        assert name in node.__all__
        assert hasattr(node, name)
    assert set(node.ORDER) >= {"containerd", "etcd", "kube-apiserver", "kubelet", "kube-proxy"}
