"""`eddyline top` and `eddyline dashboard` without servers: which Flink metrics count as what,
the rows people and scripts see, and the commands against a fake Flink REST API.

Operator and metric names are the ones Flink 2.2 gives the reference jobs (read off a running
attribution and ledger)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from deploy.cli import monitor as cli_monitor
from deploy.cli import top as view
from deploy.cli.app import app
from deploy.flink.rest import FlinkClient
from deploy.kube.client import KubeTarget
from deploy.local.stack import ports
from deploy.local.store import SqliteStore
from deploy.settings import StackSettings
from deploy.spec import FlinkJob, JobStatus, Lifecycle, SavepointInfo

runner = CliRunner()

# Attribution: two sources (each chained with its routes), a dead-letter and a late-events sink
# of their own, and the windowed join chained with its output sink.
ATTRIBUTION = {
    "jid": "a1",
    "state": "RUNNING",
    "vertices": [
        {"id": "v-views", "name": "Source: views_src[1] -> Calc[2]", "parallelism": 2},
        {"id": "v-clicks", "name": "Source: clicks_src[7] -> Calc[8]", "parallelism": 2},
        {"id": "v-dead", "name": "dead_letter[14]: Writer -> dead_letter[14]: Committer",
         "parallelism": 1},
        {"id": "v-late", "name": "late_events[22]: Writer -> late_events[22]: Committer",
         "parallelism": 1},
        {"id": "v-join", "name": "WindowJoin[37] -> attributed[39]: Writer", "parallelism": 2},
    ],
}  # fmt: skip
ATTRIBUTION_METRICS: dict[str, dict[str, dict[str, float]]] = {
    "v-views": {
        "Source__views_src[1].numRecordsOutPerSecond": {"sum": 120.0},
        "Source__views_src[1].pendingRecords": {"sum": 300.0},
    },
    "v-clicks": {
        "Source__clicks_src[7].numRecordsOutPerSecond": {"sum": 40.0},
        "Source__clicks_src[7].pendingRecords": {"sum": 20.0},
    },
    "v-dead": {"dead_letter[14]__Writer.numRecordsInPerSecond": {"sum": 1.5}},
    "v-late": {"late_events[22]__Writer.numRecordsInPerSecond": {"sum": 0.5}},
    "v-join": {"attributed[39]__Writer.numRecordsInPerSecond": {"sum": 30.0}},
}
# The ledger reads `orders` twice: valid movements into the ledger, malformed ones to dead-letter.
LEDGER = {
    "jid": "l1",
    "state": "RUNNING",
    "vertices": [
        {"id": "v-valid", "name": "Source: orders_src[78] -> Calc[79]", "parallelism": 1},
        {"id": "v-bad", "name": "Source: orders_src[83] -> dead_letter[89]: Writer",
         "parallelism": 1},
        {"id": "v-ledger", "name": "ledger -> stock_levels[91]: Writer", "parallelism": 1},
    ],
}  # fmt: skip
LEDGER_METRICS: dict[str, dict[str, dict[str, float]]] = {
    "v-valid": {
        "Source__orders_src[78].numRecordsOutPerSecond": {"sum": 100.0},
        "Source__orders_src[78].pendingRecords": {"sum": 50.0},
    },
    "v-bad": {
        "Source__orders_src[83].numRecordsOutPerSecond": {"sum": 98.0},
        "Source__orders_src[83].pendingRecords": {"sum": 70.0},
        "dead_letter[89]__Writer.numRecordsInPerSecond": {"sum": 2.0},
    },
    "v-ledger": {"stock_levels[91]__Writer.numRecordsInPerSecond": {"sum": 97.0}},
}
CHECKPOINTS = {
    "counts": {"completed": 7},
    "latest": {
        "completed": {
            "id": 7,
            "latest_ack_timestamp": 1_000_000,
            "end_to_end_duration": 83,
            "checkpointed_size": 201_029,
        },
        "savepoint": {"id": 5, "latest_ack_timestamp": 900_000, "external_path": "file:/sp"},
    },
}


# -- which operators count as what --------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("Source__views_src[1]", view.Route.source),
        ("Source__orders_src[83]", view.Route.source),
        ("dead_letter[89]__Writer", view.Route.dead_letter),
        ("late_events[22]__Writer", view.Route.late),
        ("stock_levels[91]__Writer", view.Route.output),
        ("attributed[39]__Writer", view.Route.output),
        ("dead_letter[89]__Committer", None),  # committables, not records
        ("dead_letters[3]__Writer", view.Route.output),  # another table, not the dead-letter one
        ("Calc[2]", None),
        ("ledger", None),
    ],
)
def test_operators_are_routed_by_their_names(operator: str, expected: view.Route | None) -> None:
    assert view.route(operator) == expected


def test_two_sources_of_one_topic_share_an_input_name() -> None:
    assert view.input_name("Source__orders_src[78]") == view.input_name("Source__orders_src[83]")
    assert view.input_name("Source__views_src[1]") != view.input_name("Source__clicks_src[7]")


def test_only_the_rates_and_lag_of_sources_and_writers_are_asked_for() -> None:
    available = [
        "Source__orders_src[83].numRecordsOutPerSecond",
        "Source__orders_src[83].numRecordsOut",
        "Source__orders_src[83].pendingRecords",
        "Source__orders_src[83].numRecordsInPerSecond",
        "Source__orders_src[83].KafkaSourceReader.KafkaConsumer.records-lag-max",
        "Calc[84].numRecordsOutPerSecond",
        "dead_letter[89]__Writer.numRecordsInPerSecond",
        "dead_letter[89]__Writer.numRecordsSend",
        "dead_letter[89]__Committer.numRecordsInPerSecond",
        "busyTimeMsPerSecond",
    ]
    assert view.wanted_metrics(available) == [
        "Source__orders_src[83].numRecordsOutPerSecond",
        "Source__orders_src[83].pendingRecords",
        "dead_letter[89]__Writer.numRecordsInPerSecond",
    ]


# -- one job sample -----------------------------------------------------------------------


def test_a_sample_adds_inputs_outputs_dead_letters_and_late_events() -> None:
    sample = view.job_sample("a1", ATTRIBUTION, ATTRIBUTION_METRICS, CHECKPOINTS)
    assert sample.state == "RUNNING"
    assert sample.parallelism == 2
    assert sample.records_in_per_s == 160.0  # views + clicks
    assert sample.lag == 320
    assert sample.records_out_per_s == 30.0  # the dead-letter and late sinks are not output
    assert sample.dead_lettered_per_s == 1.5
    assert sample.late_per_s == 0.5
    assert sample.checkpoint == view.Checkpoint(
        id=7, completed_at=1_000_000, duration_ms=83, size_bytes=201_029
    )
    assert sample.savepoint_at == 900_000


def test_a_topic_read_by_two_sources_counts_once() -> None:
    sample = view.job_sample("l1", LEDGER, LEDGER_METRICS, {})
    assert sample.records_in_per_s == 100.0  # not 198
    assert sample.lag == 70  # the source further behind
    assert sample.dead_lettered_per_s == 2.0
    assert sample.late_per_s is None  # the ledger has no late-events sink
    assert sample.records_out_per_s == 97.0
    assert sample.checkpoint is None
    assert sample.savepoint_at is None


def test_metrics_not_registered_yet_are_unknown_not_zero() -> None:
    sample = view.job_sample("l1", LEDGER, {}, {})
    assert sample.records_in_per_s is None
    assert sample.lag is None
    assert sample.parallelism == 1


# -- rows ---------------------------------------------------------------------------------


def _job(name: str = "attribution", **status: Any) -> FlinkJob:
    doc = {
        "apiVersion": "eddyline.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": name},
        "spec": {"job": {"entry": f"jobs.{name}", "parallelism": 2}},
    }
    job = FlinkJob.model_validate(doc)
    return job.model_copy(update={"status": JobStatus(**status)})


def test_a_running_jobs_row_takes_lifecycle_from_the_store_and_the_rest_from_flink() -> None:
    job = _job(lifecycle=Lifecycle.STABLE, job_id="a1", parallelism=2)
    sample = view.job_sample("a1", ATTRIBUTION, ATTRIBUTION_METRICS, CHECKPOINTS)
    row = view.row(job, sample)
    now = 1_012_000
    assert row.cells(now) == [
        "attribution", "STABLE", "2", "160", "30", "320", "12s 196KB", "112s",
        "1.5",
    ]  # fmt: skip
    doc = row.document(now)
    assert doc["lastCheckpoint"] == {"id": 7, "ageSeconds": 12.0, "durationMs": 83,
                                     "sizeBytes": 201_029}  # fmt: skip
    assert doc["lastSavepointAgeSeconds"] == 112.0
    assert doc["recordsInPerSecond"] == 160.0
    assert doc["deadLetteredPerSecond"] == 1.5
    assert doc["latePerSecond"] == 0.5


def test_the_newer_of_the_controllers_and_flinks_savepoints_is_shown() -> None:
    newer = SavepointInfo(path="file:/sp-2", time=950_000, trigger="periodic")
    job = _job(lifecycle=Lifecycle.STABLE, job_id="a1", savepoints=[newer])
    sample = view.job_sample("a1", ATTRIBUTION, ATTRIBUTION_METRICS, CHECKPOINTS)
    assert view.row(job, sample).last_savepoint_at == 950_000


def test_a_suspended_job_shows_its_lifecycle_and_savepoint_and_no_rates() -> None:
    sp = SavepointInfo(path="file:/sp", time=400_000, trigger="suspend")
    job = _job(lifecycle=Lifecycle.SUSPENDED, savepoints=[sp], parallelism=2)
    row = view.row(job, None)
    assert row.cells(1_000_000) == ["attribution", "SUSPENDED", "2", "-", "-", "-", "-", "10m",
                                    "-"]  # fmt: skip
    assert row.document(1_000_000)["recordsInPerSecond"] is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "-"), (0.0, "0.0"), (0.25, "0.2"), (9.96, "10.0"), (12.4, "12"), (1534.0, "1.5k"),
     (2_500_000.0, "2.5M")],
)  # fmt: skip
def test_rates_are_short(value: float | None, shown: str) -> None:
    assert view.per_second(value) == shown


@pytest.mark.parametrize(
    ("n", "shown"),
    [(0, "0B"), (312, "312B"), (2048, "2.0KB"), (201_029, "196KB"), (1_660_381, "1.6MB"),
     (5 * 1024**3, "5.0GB")],
)  # fmt: skip
def test_sizes_are_short(n: int, shown: str) -> None:
    assert view.size(n) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (119, "119s"), (120, "2m"), (7_199, "119m"),
                           (7_200, "2h"), (200_000, "2d")]
)  # fmt: skip
def test_ages_are_short(seconds: int, shown: str) -> None:
    assert view.age(1_000, 1_000 + seconds * 1000) == shown


def test_the_header_says_when_flink_does_not_answer() -> None:
    ok = view.header("http://f", {"taskmanagers": 1, "slots-total": 4, "slots-available": 1,
                                  "jobs-running": 3}, None)  # fmt: skip
    assert ok == "Flink http://f · 1 TaskManager(s) · 1/4 slots free · 3 running"
    assert "not answering (connection refused)" in view.header(
        "http://f", None, "connection refused"
    )


# -- against a fake Flink -----------------------------------------------------------------


class FakeFlink:
    """Flink's REST API for the two jobs above; counts requests per path."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.jobs = {"a1": (ATTRIBUTION, ATTRIBUTION_METRICS), "l1": (LEDGER, LEDGER_METRICS)}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(path)
        parts = path.strip("/").split("/")
        if path == "/overview":
            return httpx.Response(200, json={"taskmanagers": 1, "slots-total": 4,
                                             "slots-available": 2, "jobs-running": 2})  # fmt: skip
        if parts[0] != "jobs" or parts[1] not in self.jobs:
            return httpx.Response(404, json={"errors": ["Job not found"]})
        detail, metrics = self.jobs[parts[1]]
        if len(parts) == 2:
            return httpx.Response(200, json=detail)
        if parts[2] == "checkpoints":
            return httpx.Response(200, json=CHECKPOINTS)
        vertex = metrics.get(parts[3], {})
        wanted = request.url.params.get("get")
        if wanted is None:  # the names available, as Flink lists them
            names = [*vertex, "busyTimeMsPerSecond", "Calc[2].numRecordsOutPerSecond"]
            return httpx.Response(200, json=[{"id": n} for n in names])
        return httpx.Response(
            200, json=[{"id": n, **vertex[n]} for n in wanted.split(",") if n in vertex]
        )


@pytest.fixture
def fake() -> FakeFlink:
    return FakeFlink()


@pytest.fixture
def client(fake: FakeFlink) -> Iterator[FlinkClient]:
    with FlinkClient("http://flink", transport=httpx.MockTransport(fake)) as c:
        yield c


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(StackSettings(state_dir=tmp_path / "state").controller_db)
    for name, job_id in (("attribution", "a1"), ("ledger", "l1"), ("sessions", None)):
        s.apply(_job(name))
        lifecycle = Lifecycle.STABLE if job_id else Lifecycle.DEPLOYING
        s.write_status(name, JobStatus(job_id=job_id, lifecycle=lifecycle))
    return s


def test_the_sampler_reads_each_vertexs_metric_names_once(
    fake: FakeFlink, client: FlinkClient
) -> None:
    sampler = cli_monitor.Sampler(client)
    first = sampler.sample("a1")
    second = sampler.sample("a1")
    assert first == second
    assert first is not None
    assert first.records_in_per_s == 160.0
    listings = [p for p in fake.requests if p.endswith("/subtasks/metrics")]
    assert len(listings) == 5 * 2 + 5  # names then values per vertex, then values only
    assert sampler.sample("gone") is None


def test_frames_list_every_job_and_sample_those_flink_runs(
    store: SqliteStore, client: FlinkClient
) -> None:
    frames = list(cli_monitor.frames(store, client, interval=0, iterations=2))
    assert len(frames) == 2
    header, rows, overview = frames[-1]
    assert overview is not None
    assert header.endswith("2/4 slots free · 2 running")
    by_name = {r.name: r for r in rows}
    assert by_name["attribution"].records_in_per_s == 160.0
    assert by_name["ledger"].lag == 70
    assert by_name["sessions"].lifecycle == "DEPLOYING"
    assert by_name["sessions"].records_in_per_s is None


def test_top_json_lines_when_flink_does_not_answer(store: SqliteStore, tmp_path: Path) -> None:
    nowhere = f"http://localhost:{ports.free_port()}"
    result = runner.invoke(
        app,
        ["top", "-o", "json", "-n", "2", "--interval", "0.2", "--flink-url", nowhere,
         "--state-dir", str(tmp_path / "state")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    frame = json.loads(lines[0])
    assert frame["flinkAnswers"] is False
    assert "not answering" in frame["header"]
    assert [j["name"] for j in frame["jobs"]] == ["attribution", "ledger", "sessions"]
    assert frame["jobs"][0]["lifecycle"] == "STABLE"
    assert frame["jobs"][0]["recordsInPerSecond"] is None


# -- dashboard ----------------------------------------------------------------------------


def test_dashboard_without_a_running_stack_says_how_to_start_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dashboard", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 1
    assert "eddyline up" in result.stderr


def test_the_port_forward_command_names_the_service_and_ports() -> None:
    target = KubeTarget(context="kind-dev", kubeconfig=Path("/k/config"))
    service = cli_monitor.JobManagerService("eddyline-jobmanager", 8081)
    assert cli_monitor.port_forward_command("kubectl", target, "flink", service, 18081) == [
        "kubectl", "--kubeconfig", "/k/config", "--context", "kind-dev", "--namespace", "flink",
        "port-forward", "--address", "127.0.0.1", "service/eddyline-jobmanager", "18081:8081",
    ]  # fmt: skip


def test_ingress_urls_are_the_rules_routing_to_the_jobmanager() -> None:
    def rule(host: str | None, service: str, path: str = "/") -> dict[str, Any]:
        backend = {"service": {"name": service, "port": {"number": 8081}}}
        r: dict[str, Any] = {"http": {"paths": [{"path": path, "backend": backend}]}}
        if host:
            r["host"] = host
        return r

    ingresses = {
        "items": [
            {"spec": {"rules": [rule("flink.example.com", "eddyline-jobmanager")],
                      "tls": [{"hosts": ["flink.example.com"]}]}},
            {"spec": {"rules": [rule("other.example.com", "grafana")]}},
            {"spec": {"rules": [rule(None, "eddyline-jobmanager", "/flink")]},
             "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.7"}]}}},
        ]
    }  # fmt: skip
    assert cli_monitor.ingress_urls(ingresses, "eddyline-jobmanager") == [
        "https://flink.example.com/",
        "http://10.0.0.7/flink",
    ]
    assert cli_monitor.ingress_urls({"items": []}, "eddyline-jobmanager") == []


def test_kubectl_is_found_by_env_then_the_built_tools(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(cli_monitor.KUBECTL_ENV, "/opt/k/kubectl")
    assert cli_monitor.find_kubectl() == "/opt/k/kubectl"
    monkeypatch.delenv(cli_monitor.KUBECTL_ENV)
    built = tmp_path / "kubectl"
    built.write_text("#!/bin/sh\n")
    built.chmod(0o755)
    monkeypatch.setattr(cli_monitor, "KUBE_TOOLS", tmp_path)
    assert cli_monitor.find_kubectl() == str(built)


def test_dashboard_kube_without_a_kubeconfig_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dashboard", "--kube", "--kubeconfig", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "cannot connect to Kubernetes" in result.stderr


def test_dashboard_kube_without_kubectl_prints_the_port_forward_to_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{ports.free_port()}"}}
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "flink"}}
                ],
                "current-context": "x",
            }
        )
    )  # an API server that is not there: no Ingress can be listed either
    monkeypatch.delenv(cli_monitor.KUBECTL_ENV, raising=False)
    monkeypatch.setattr(cli_monitor, "KUBE_TOOLS", tmp_path / "no-tools")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = runner.invoke(
        app, ["dashboard", "--kube", "--kubeconfig", str(config), "--local-port", "18081",
              "-o", "json"]
    )  # fmt: skip
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["url"] is None
    assert answer["ingress"] == []
    assert answer["portForward"] == (
        f"kubectl --kubeconfig {config} --namespace flink port-forward --address 127.0.0.1 "
        "service/eddyline-jobmanager 18081:8081"
    )
