"""The chart on a real node: real pods from the image `make image` built, `helm test`, the three
reference jobs submitted with `eddyline submit --kube` and checked against the oracles, pods
killed under the exactly-once ledger and `helm upgrade` (state and HA: test_chart_state.py;
`helm uninstall`: test_chart_uninstall.py).

The tests share one release (the session `release` fixture) and run in file order.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, clickstream, orders
from deploy.localkube import host
from deploy.localkube.__main__ import image_ref
from deploy.localkube.layout import NODE_NAME
from tests import oracles
from tests.cluster.conftest import Release
from tests.cluster.jobs import PodJob, delete, describe, kube_args, submit, wait_running
from tests.integration.cli import EDDYLINE, eddyline, stop_like_ctrl_c
from tests.integration.jobrun import (
    Topics,
    canonical_values,
    dead_letter_origins,
    produce,
    read_inputs,
)
from tests.integration.stacks import RunningStack
from tests.integration.test_dashboard_browser import CHROMIUM
from tests.integration.test_reference_jobs import CLICKSTREAM, _closing_events, _closing_ts, _ts
from tests.k8s.chart import RELEASE

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "cluster"
COMPONENTS = ("jobmanager", "taskmanager", "controller")


def read_output(
    stack: RunningStack, topic: str, expected: int, read_committed: bool = False
) -> list[kafka_io.Record]:
    """As tests/integration/jobrun.read_output, with more time: three Python jobs share one
    TaskManager pod on a loaded 2-core node, and the last windows can take minutes to come."""
    return kafka_io.read_all(
        stack.bootstrap_servers,
        topic,
        expected=expected,
        timeout=600,
        idle=4.0,
        read_committed=read_committed,
    )


def assert_ledger_exactly_once(stack: RunningStack, orders_topic: str, output_topic: str) -> None:
    """Read with read_committed, the ledger's output is the oracle's: every movement applied
    exactly once, and each SKU's levels in order."""
    inputs = read_inputs(stack, orders_topic)
    expected = oracles.ledger(inputs)
    records = read_output(stack, output_topic, sum(expected.output.values()), read_committed=True)
    assert canonical_values(records) == expected.output
    by_sku: dict[str, list[dict[str, object]]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_sku.setdefault(json.loads(r.value)["sku"], []).append(json.loads(r.value))
    assert by_sku == oracles.ledger_by_sku(inputs)


def _ready(pod: dict[str, Any]) -> bool:
    statuses = pod["status"].get("containerStatuses") or []
    return pod["status"].get("phase") == "Running" and all(s["ready"] for s in statuses)


def wait_pods(release: Release, component: str, count: int, timeout: float = 300) -> list[Any]:
    deadline = time.monotonic() + timeout
    pods: list[Any] = []
    while time.monotonic() < deadline:
        pods = release.pods(component)
        if len(pods) == count and all(_ready(p) for p in pods):
            return pods
        time.sleep(2)
    raise AssertionError(
        f"{count} Ready {component} pod(s) wanted, have "
        f"{[(p['metadata']['name'], p['status'].get('phase')) for p in pods]}\n"
        + release.kubectl("get", "events", "--sort-by=.lastTimestamp", check=False)[-3000:]
    )


def test_the_node_is_a_real_kubelet_on_containerd(release: Release) -> None:
    node = json.loads(release.kube.kubectl_run("get", "node", NODE_NAME, "-o", "json").stdout)
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    assert info["kubeletVersion"] == "v1.37.2"
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready
    assert ready[0]["status"] == "True"


def test_helm_install_brings_every_pod_up_on_the_node(release: Release) -> None:
    for component in COMPONENTS:
        [pod] = wait_pods(release, component, 1)
        assert pod["spec"]["nodeName"] == NODE_NAME
        [c] = pod["status"]["containerStatuses"]
        assert c["image"].endswith(image_ref()), c["image"]
        assert c["restartCount"] == 0, f"{component} restarted: {c.get('lastState')}"
    # A real process runs as the chart's non-root user, on a read-only root filesystem.
    jm = release.pods("jobmanager")[0]["metadata"]["name"]
    who = release.kubectl("exec", jm, "--", "id", "-u").strip()
    assert who == "9999"
    touch = release.kube.kubectl_run(
        "-n", release.namespace, "exec", jm, "--", "touch", "/opt/eddyline/x", check=False
    )
    assert touch.returncode != 0
    assert "Read-only file system" in touch.stderr


def test_helm_test_runs_its_check_and_passes(release: Release) -> None:
    result = release.kube.helm_run(
        "test", RELEASE, "--namespace", release.namespace, "--timeout", "180s"
    )
    assert "Phase:          Succeeded" in result.stdout, result.stdout


def test_pods_resolve_cluster_names_and_nothing_else(release: Release) -> None:
    jm = release.pods("jobmanager")[0]["metadata"]["name"]
    probe = (
        "import socket\n"
        "def r(n):\n"
        "    try: return socket.gethostbyname(n)\n"
        "    except OSError as e: return 'error'\n"
        f"print(r('{RELEASE}-jobmanager'), r('kubernetes.default'), r('pypi.org'))\n"
    )
    out = release.kubectl("exec", jm, "--", "python", "-c", probe).split()
    assert out[0] == release.service_ip(f"{RELEASE}-jobmanager")
    assert out[1] == "10.234.1.1"
    assert out[2] == "error", "a name outside the cluster resolved: DNS must not forward"


def test_an_image_not_loaded_on_the_node_is_named_with_the_pods_event(release: Release) -> None:
    """`make cluster-status` quotes why a pod cannot start: here an image never loaded (and
    never pulled: nothing leaves the machine)."""
    pod = "not-loaded"
    release.kubectl(
        "run", pod, "--image=eddyline:0.0.0-not-loaded", "--image-pull-policy=Never",
        "--restart=Never", "--command", "--", "true",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        line, out = "", ""
        # kubelet's Events and the pod's status arrive apart: wait for the line that quotes them.
        while time.monotonic() < deadline and "is not present with pull policy" not in line:
            result = subprocess.run(
                [sys.executable, "-m", "deploy.localkube", "status"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            out = result.stderr
            line = next((ln for ln in out.splitlines() if f"/{pod} " in ln), "")
            time.sleep(2)
        assert "ErrImageNeverPull" in line, out
        assert f"pod {release.namespace}/{pod} (Pending): ErrImageNeverPull: " in line
        assert '"eddyline:0.0.0-not-loaded" is not present with pull policy of Never' in line
    finally:
        release.kubectl("delete", "pod", pod, "--wait=false")


OUTSIDE_NS, OUTSIDE_HOST, OUTSIDE_IF = "edl-outside", "198.51.100.2", "edl-out0"


@pytest.fixture
def outside_host() -> Iterator[str]:
    """A host of our own past the node: a network namespace behind a veth on this machine, with
    an HTTP server on 198.51.100.2:8080 — what any address beyond the bridge looks like to a
    pod. Removed afterwards."""
    run = subprocess.run
    run(["ip", "netns", "add", OUTSIDE_NS], check=True)
    server = None
    try:
        run(["ip", "link", "add", OUTSIDE_IF, "type", "veth", "peer", "name", "edl-out1",
             "netns", OUTSIDE_NS], check=True)  # fmt: skip
        run(["ip", "addr", "add", "198.51.100.1/30", "dev", OUTSIDE_IF], check=True)
        run(["ip", "link", "set", OUTSIDE_IF, "up"], check=True)
        inside = ["ip", "netns", "exec", OUTSIDE_NS]
        run([*inside, "ip", "addr", "add", f"{OUTSIDE_HOST}/30", "dev", "edl-out1"], check=True)
        run([*inside, "ip", "link", "set", "edl-out1", "up"], check=True)
        run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        run([*inside, "ip", "route", "add", "default", "via", "198.51.100.1"], check=True)
        server = subprocess.Popen(
            [*inside, sys.executable, "-m", "http.server", "--bind", OUTSIDE_HOST, "8080"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:  # the host itself reaches it (OUTPUT, not FORWARD): the server is up
            try:
                socket.create_connection((OUTSIDE_HOST, 8080), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield OUTSIDE_HOST
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        run(["ip", "netns", "delete", OUTSIDE_NS], check=False)


def test_pods_reach_nothing_past_the_node(release: Release, outside_host: str) -> None:
    """The host reaches the outside host; a pod trying the same is refused by the node's
    forwarding rule (rejected, not silently dropped, so the test is quick)."""
    jm = release.pods("jobmanager")[0]["metadata"]["name"]
    probe = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('{outside_host}', 8080), timeout=10).close()\n"
        "    print('open')\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )
    out = release.kubectl("exec", jm, "--", "python", "-c", probe).strip()
    assert out == "ConnectionRefusedError", f"a pod reached {outside_host}: {out}"
    assert host.forward_rules_first()


ORDERS = GeneratorConfig(seed=7, events=3_000, skus=40, duplicate=0.03, malformed=0.02)


def _dashboard_shows_running(release: Release, names: list[str]) -> Path:
    """`eddyline dashboard --kube` forwards a local port to the JobManager Service (kubectl →
    API server → the real kubelet → containerd's stream server); Chromium opens the Flink Web UI
    there and finds each job RUNNING. The screenshot's path."""
    command = [str(EDDYLINE), "dashboard", "--kube", "--namespace", release.namespace]
    command += ["--kubeconfig", str(release.kube.kubeconfig), "-o", "json"]
    env = {**release.kube.env, "EDDYLINE_KUBECTL": str(release.kube.kubectl)}
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            line = proc.stdout.readline() if ready else ""
            assert line, f"no address printed; stderr: {proc.stderr.read()}"
            url = json.loads(line)["url"]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 900})
                    page.goto(f"{url}/#/overview")
                    expect(page.get_by_text("Running Job List")).to_be_visible(timeout=60_000)
                    running = page.locator("tr", has_text="RUNNING")
                    for name in names:
                        expect(
                            running.filter(has=page.get_by_text(name, exact=True))
                        ).to_have_count(1, timeout=60_000)
                    shot = ARTIFACTS / "dashboard-kube-overview.png"
                    shot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shot), full_page=True)
                finally:
                    browser.close()
        finally:
            code = stop_like_ctrl_c(proc)  # as Ctrl-C: the forward ends, the command too
    assert code == 0
    return shot


def test_reference_jobs_in_pods_equal_the_oracles(release: Release, tmp_path: Path) -> None:
    """Attribution, sessions and the exactly-once ledger, each a FlinkJob submitted with
    `eddyline submit --kube`: the controller pod deploys them on the Flink pods, which read and
    write the local stack's Kafka over the node's bridge."""
    stack = release.stack
    ledger = Topics.fresh("stock-levels")
    clicks = Topics.fresh("attributed")
    sessions_out = f"sessions-{clicks.run}"
    kafka_io.create_topics(
        stack.bootstrap_servers,
        {ledger.orders: 2, ledger.output: 2, ledger.dead: 1, clicks.views: 2, clicks.clicks: 2,
         clicks.output: 2, sessions_out: 2, clicks.late: 1, clicks.dead: 1,
         f"late-s-{clicks.run}": 1, f"dead-s-{clicks.run}": 1},
    )  # fmt: skip
    produce(stack, orders(ORDERS), {"orders": ledger.orders})
    messages = clickstream(CLICKSTREAM)
    names = {"views": clicks.views, "clicks": clicks.clicks}
    late = [m for m in messages if m.kind == "late"]
    produce(stack, [m for m in messages if m.kind != "late"], names)

    common = ["--starting-offsets", "earliest", "--checkpoint-interval", "2s"]
    # Every partition has events and closing events, so none is ever idle; on a loaded 2-core
    # node a reader can stall for more than the default 10 s, and marking its partition idle
    # would let the watermark pass events not yet read (they would be late, and the run not
    # the oracle's).
    inputs = [
        "--views-topic",
        clicks.views,
        "--clicks-topic",
        clicks.clicks,
        "--idle-timeout",
        "10m",
    ]
    submit(release, tmp_path, f"ledger-{ledger.run}", "jobs.ledger", [
        *common, "--orders-topic", ledger.orders, "--output-topic", ledger.output,
        "--dead-letter-topic", ledger.dead,
    ], kafka={"inputTopics": [ledger.orders], "outputTopics": [ledger.output]})  # fmt: skip
    submit(release, tmp_path, f"attribution-{clicks.run}", "jobs.attribution", [
        *common, *inputs, "--output-topic", clicks.output, "--late-topic", clicks.late,
        "--dead-letter-topic", clicks.dead,
    ])  # fmt: skip
    submit(release, tmp_path, f"sessions-{clicks.run}", "jobs.sessions", [
        *common, *inputs, "--output-topic", sessions_out, "--late-topic", f"late-s-{clicks.run}",
        "--dead-letter-topic", f"dead-s-{clicks.run}",
    ])  # fmt: skip
    jobs: list[PodJob] = []
    try:
        attribution = wait_running(release, f"attribution-{clicks.run}")
        sessions = wait_running(release, f"sessions-{clicks.run}")
        jobs += [attribution, sessions]
        # Lateness made deterministic, as in tests/integration/test_reference_jobs.py.
        latest_late = max(_ts(m.value) for m in late)
        for job in (attribution, sessions):
            job.wait_watermark(latest_late, timeout=300)
        produce(stack, late, names)
        closing = _closing_ts([m.value for m in messages])
        _closing_events(stack, clicks, closing)

        order_inputs = read_inputs(stack, ledger.orders)
        expected_ledger = oracles.ledger(order_inputs)
        got_ledger = read_output(
            stack, ledger.output, sum(expected_ledger.output.values()), read_committed=True
        )
        assert canonical_values(got_ledger) == expected_ledger.output
        dead = read_output(stack, ledger.dead, expected_ledger.counts["dead_lettered"])
        assert dead_letter_origins(dead) == expected_ledger.dead

        views, clicks_in = read_inputs(stack, clicks.views), read_inputs(stack, clicks.clicks)
        late_values = {m.value for m in late}
        late_keys = {
            (r.topic, r.partition, r.offset) for r in views + clicks_in if r.value in late_values
        }
        exp_attr = oracles.attribution(views, clicks_in, late=late_keys)
        exp_sess = oracles.sessions(
            views, clicks_in, late=late_keys, gap_ms=1_800_000, final_watermark=closing - 5_001
        )
        for expected, out, late_topic, dead_topic in (
            (exp_attr, clicks.output, clicks.late, clicks.dead),
            (exp_sess, sessions_out, f"late-s-{clicks.run}", f"dead-s-{clicks.run}"),
        ):
            assert sum(expected.output.values()) > 50
            got = read_output(stack, out, sum(expected.output.values()))
            assert canonical_values(got) == expected.output, out
            got_late = read_output(stack, late_topic, sum(expected.late.values()))
            assert canonical_values(got_late) == expected.late, late_topic
            got_dead = read_output(stack, dead_topic, sum(expected.dead.values()))
            assert dead_letter_origins(got_dead) == expected.dead, dead_topic

        running = [f"ledger-{ledger.run}", f"attribution-{clicks.run}", f"sessions-{clicks.run}"]
        print(f"screenshot: {_dashboard_shows_running(release, running)}")
    finally:
        for job in jobs:
            job.flink.close()
        for name in (f"attribution-{clicks.run}", f"sessions-{clicks.run}", f"ledger-{ledger.run}"):
            delete(release, name)


def _live_jobs(release: Release, name: str) -> list[dict[str, Any]]:
    """Flink's own list (not the controller's record): jobs named `name` that are not over."""
    job = PodJob(release.flink_url, "")
    try:
        return [
            j
            for j in job.flink.jobs()
            if j.get("name") == name and j["state"] not in ("FINISHED", "CANCELED", "FAILED")
        ]
    finally:
        job.flink.close()


def _job_parallelism(release: Release, job_id: str) -> set[int]:
    job = PodJob(release.flink_url, job_id)
    try:
        return {int(v["parallelism"]) for v in job.flink.job(job_id)["vertices"]}
    finally:
        job.flink.close()


def _registered_taskmanagers(release: Release) -> int:
    job = PodJob(release.flink_url, "")
    try:
        return int(job.flink.overview()["taskmanagers"])
    finally:
        job.flink.close()


def _wait(what: str, check: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last is True:
            return
        time.sleep(3)
    raise AssertionError(f"{what}: not after {timeout} s (last: {last})")


def test_scale_grows_the_taskmanager_pods_and_shrinks_them_when_idle(
    release: Release, tmp_path: Path
) -> None:
    """`eddyline scale --kube` past the slots the TaskManager pods have: the controller grows
    the TaskManager Deployment, the new pod's TaskManager registers and takes the work, the job
    is rescaled in place (same Flink job). Scaled back, the idle pod goes after the delay."""
    stack = release.stack
    topics = Topics.fresh("stock-levels")
    name = f"scaled-{topics.run}"
    kafka_io.create_topics(
        stack.bootstrap_servers, {topics.orders: 2, topics.output: 2, topics.dead: 1}
    )
    produce(stack, orders(GeneratorConfig(seed=3, events=500, skus=20)), {"orders": topics.orders})
    submit(release, tmp_path, name, "jobs.ledger", [
        "--starting-offsets", "earliest", "--orders-topic", topics.orders,
        "--output-topic", topics.output, "--dead-letter-topic", topics.dead,
    ], kafka={"inputTopics": [topics.orders], "outputTopics": [topics.output]})  # fmt: skip
    job = wait_running(release, name)
    first_id = job.id
    job.flink.close()
    slots = 4  # helm/eddyline/ci/real-node.yaml: taskmanager.slots
    try:
        result = eddyline("scale", name, "--parallelism", str(slots + 2), *kube_args(release))
        assert result.returncode == 0, result.stderr + result.stdout
        tm = f"{RELEASE}-taskmanager"
        _wait(
            "two TaskManager pods Ready and registered",
            lambda: (
                (
                    len([p for p in release.pods("taskmanager") if _ready(p)]) == 2
                    and _registered_taskmanagers(release) == 2
                )
                or (len(release.pods("taskmanager")), _registered_taskmanagers(release))
            ),
        )
        _wait(
            f"the job at parallelism {slots + 2}",
            lambda: (
                _job_parallelism(release, first_id) == {slots + 2}
                or _job_parallelism(release, first_id)
            ),
        )
        events = release.kubectl("get", "events", "--field-selector", "reason=ScaledUp")
        assert tm in events
        assert describe(release, name)["status"]["jobId"] == first_id  # in place

        result = eddyline("scale", name, "--parallelism", "1", *kube_args(release))
        assert result.returncode == 0, result.stderr + result.stdout
        _wait(
            "the idle TaskManager pod removed after the scale-down delay",
            lambda: len(release.pods("taskmanager")) == 1 or len(release.pods("taskmanager")),
            timeout=360,
        )
        replicas = release.kubectl("get", "deployment", tm, "-o", "jsonpath={.spec.replicas}")
        assert replicas.strip() == "1"
        assert "ScaledDown" in release.kubectl(
            "get", "events", "--field-selector", "reason=ScaledDown"
        )
        assert _job_parallelism(release, first_id) == {1}
        assert [j["jid"] for j in _live_jobs(release, name)] == [first_id]
    finally:
        delete(release, name)


def test_ledger_survives_pod_kills_and_a_helm_upgrade(release: Release, tmp_path: Path) -> None:
    """The exactly-once ledger runs while a TaskManager pod and then the controller pod are
    deleted, and while `helm upgrade` rolls the TaskManager and controller pods: read with
    read_committed, every movement is applied exactly once, and Flink runs one job for it."""
    stack = release.stack
    topics = Topics.fresh("stock-levels")
    name = f"ledger-{topics.run}"
    kafka_io.create_topics(
        stack.bootstrap_servers, {topics.orders: 2, topics.output: 2, topics.dead: 1}
    )
    batches = orders(GeneratorConfig(seed=13, events=9_000, skus=60, duplicate=0.03, malformed=0.0))
    third = len(batches) // 3
    produce(stack, batches[:third], {"orders": topics.orders})
    submit(release, tmp_path, name, "jobs.ledger", [
        "--starting-offsets", "earliest", "--checkpoint-interval", "2s",
        "--orders-topic", topics.orders, "--output-topic", topics.output,
        "--dead-letter-topic", topics.dead,
    ], kafka={"inputTopics": [topics.orders], "outputTopics": [topics.output]})  # fmt: skip
    job = wait_running(release, name)
    try:
        first_id = job.id
        read_output(stack, topics.output, 100, read_committed=True)  # it is applying movements

        [tm] = release.pods("taskmanager")
        release.kubectl("delete", "pod", tm["metadata"]["name"], "--wait=false")
        [controller] = release.pods("controller")
        release.kubectl("delete", "pod", controller["metadata"]["name"], "--wait=false")
        produce(stack, batches[third : 2 * third], {"orders": topics.orders})
        wait_pods(release, "taskmanager", 1)
        wait_pods(release, "controller", 1)

        upgrade = release.kube.helm_run(
            "upgrade", RELEASE, str(Path(__file__).parents[2] / "helm" / "eddyline"),
            "--namespace", release.namespace, "--reuse-values",
            "--set", "taskmanager.podLabels.rolled=once",
            "--set", "controller.podLabels.rolled=once",
            "--wait", "--timeout", "300s",
        )  # fmt: skip
        assert "STATUS: deployed" in upgrade.stdout
        for component in ("taskmanager", "controller"):
            [pod] = wait_pods(release, component, 1)
            assert pod["metadata"]["labels"].get("rolled") == "once"
        produce(stack, batches[2 * third :], {"orders": topics.orders})

        assert_ledger_exactly_once(stack, topics.orders, topics.output)
        live = _live_jobs(release, name)
        assert len(live) == 1, live
        # The session cluster restarted the job from its checkpoint; nobody submitted another.
        assert live[0]["jid"] == first_id
        status = describe(release, name)["status"]
        assert status["jobId"] == first_id
    finally:
        job.flink.close()
        delete(release, name)
