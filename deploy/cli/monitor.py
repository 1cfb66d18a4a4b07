"""The `eddyline` commands for watching jobs: `dashboard` (where the Flink Web UI is, locally or
through a Kubernetes port-forward) and `top` (a live table of the jobs until Ctrl-C).

What `top` reads and how it computes each column is in deploy/cli/top.py (pure); this module only
asks Flink's REST API and the store, and draws.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from deploy.cli import top as view
from deploy.cli.common import Output, OutputOpt, StateDir, console, err, fail, settings_from
from deploy.cli.options import Kubeconfig, KubeContext, KubeNamespace, command, kube_target
from deploy.errors import FlinkError
from deploy.flink import health as flink_health
from deploy.flink.rest import FlinkClient
from deploy.local.stack import control, ports, state
from deploy.local.store import SqliteStore

if TYPE_CHECKING:  # the Kubernetes client takes a second and a half to import: only for --kube
    from deploy.kube.api import RestApi
    from deploy.kube.client import KubeTarget

KUBECTL_ENV = "EDDYLINE_KUBECTL"
KUBE_TOOLS = Path.home() / ".cache" / "eddyline" / "bin"
PORT_FORWARD_TIMEOUT_S = 30.0


def job_link(flink_url: str, job_id: str) -> str:
    """The Web UI page of one job (the same link `eddyline describe` shows)."""
    return f"{flink_url.rstrip('/')}/#/job/running/{job_id}/overview"


# -- dashboard ---------------------------------------------------------------------------


@command
def dashboard(
    open_browser: Annotated[
        bool, typer.Option("--open", help="also open it in the default web browser")
    ] = False,
    kube: Annotated[
        bool, typer.Option("--kube", help="the chart's JobManager, through kubectl port-forward")
    ] = False,
    namespace: KubeNamespace = None,
    context: KubeContext = None,
    kubeconfig: Kubeconfig = None,
    service: Annotated[
        str, typer.Option(help="--kube: the JobManager's Service")
    ] = "eddyline-jobmanager",
    remote_port: Annotated[int, typer.Option(help="--kube: the Service's REST port")] = 8081,
    local_port: Annotated[
        int | None, typer.Option(help="--kube: local port to forward \\[a free one]")
    ] = None,
    state_dir: StateDir = None,
    output: OutputOpt = Output.table,
) -> None:
    """The Flink Web UI's URL and each job's page in it. Locally: the running stack's. With
    `--kube`: forwards a local port to the chart's JobManager until Ctrl-C (needs kubectl; without
    it, prints the command to run and any Ingress that serves the UI)."""
    target = kube_target(kube, namespace, kubeconfig, context)
    if target is not None:
        jobmanager = JobManagerService(service, remote_port)
        _kube_dashboard(target, jobmanager, local_port, open_browser, output)
        return
    settings = settings_from(state_dir=state_dir)
    url = control.load_running(settings.state_dir).flink_url
    if not flink_health.flink_answers(url):
        raise fail(f"Flink at {url} does not answer; see `eddyline status`")
    jobs = [
        {"name": j.name, "jobId": j.status.job_id, "url": job_link(url, j.status.job_id)}
        for j in SqliteStore(settings.controller_db).list()
        if j.status.job_id
    ]
    if output == Output.json:
        typer.echo(json.dumps({"url": url, "jobs": jobs}))
    else:
        console.print(f"Flink dashboard: [bold]{url}[/bold]", highlight=False)
        width = max((len(j["name"]) for j in jobs), default=0)
        for j in jobs:
            console.print(f"  {j['name']:<{width}}  {j['url']}", highlight=False, soft_wrap=True)
    if open_browser:
        _open(url)


def _open(url: str) -> None:
    if not webbrowser.open(url):
        err.print(f"No web browser to open here; open {url} yourself.", highlight=False)


@dataclass(frozen=True)
class JobManagerService:
    """The chart's JobManager Service (REST API and Web UI) in the target namespace."""

    name: str
    port: int


def kubectl_args(kubectl: str, target: KubeTarget, namespace: str) -> list[str]:
    args = [kubectl]
    if target.kubeconfig is not None:
        args += ["--kubeconfig", str(target.kubeconfig)]
    if target.context:
        args += ["--context", target.context]
    return [*args, "--namespace", namespace]


def find_kubectl() -> str | None:
    """kubectl: $EDDYLINE_KUBECTL, else the one `make` builds into ~/.cache/eddyline/bin, else
    the PATH's."""
    given = os.environ.get(KUBECTL_ENV)
    if given:
        return given
    built = KUBE_TOOLS / "kubectl"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    return shutil.which("kubectl")


def port_forward_command(
    kubectl: str, target: KubeTarget, namespace: str, service: JobManagerService, local_port: int
) -> list[str]:
    return [
        *kubectl_args(kubectl, target, namespace),
        "port-forward",
        "--address",
        "127.0.0.1",
        f"service/{service.name}",
        f"{local_port}:{service.port}",
    ]


def ingress_urls(ingresses: dict[str, Any], service: str) -> list[str]:
    """The URLs of the Ingress rules (from `kubectl get ingress -o json`) that route to
    `service`: https when the host is in the Ingress's TLS section; a rule without a host is
    reached through the load balancer's address."""
    urls = []
    for item in ingresses.get("items") or []:
        spec = item.get("spec") or {}
        tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
        balancers = ((item.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        addresses = [b.get("hostname") or b.get("ip") for b in balancers]
        for rule in spec.get("rules") or []:
            host = rule.get("host")
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = ((path.get("backend") or {}).get("service") or {}).get("name")
                if backend != service:
                    continue
                scheme = "https" if host in tls_hosts else "http"
                for where in [host] if host else [a for a in addresses if a]:
                    urls.append(f"{scheme}://{where}{path.get('path') or '/'}")
    return urls


def _kube_dashboard(
    target: KubeTarget,
    service: JobManagerService,
    local_port: int | None,
    open_browser: bool,
    output: Output,
) -> None:
    from deploy.kube.client import connect  # noqa: PLC0415 - see TYPE_CHECKING above

    api = connect(target)  # a KubeError is reported by `command`
    try:
        namespace = api.namespace
        ingresses = _ingresses(api, service.name)
    finally:
        api.close()
    kubectl = find_kubectl()
    port = local_port or ports.free_port()
    url = f"http://localhost:{port}"
    command = port_forward_command(kubectl or "kubectl", target, namespace, service, port)
    if kubectl is None:
        _no_kubectl(command, url, ingresses, output)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_forwarding(proc, port)
        if output == Output.json:
            doc = {"url": url, "portForward": shlex.join(command), "ingress": ingresses}
            typer.echo(json.dumps(doc))
        else:
            console.print(
                f"Flink dashboard: [bold]{url}[/bold] (forwarded to {namespace}/service/"
                f"{service.name}; Ctrl-C to stop)",
                highlight=False,
            )
            for ingress in ingresses:
                console.print(f"  also through its Ingress: {ingress}", highlight=False)
        if open_browser:
            _open(url)
        proc.wait()
        raise fail(f"kubectl port-forward ended: {_stderr(proc)}")
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def _no_kubectl(command: list[str], url: str, ingresses: list[str], output: Output) -> NoReturn:
    """Without kubectl: the command to run and any Ingress; exit 0 only if there is one."""
    if output == Output.json:
        doc = {"url": None, "portForward": shlex.join(command), "ingress": ingresses}
        typer.echo(json.dumps(doc))
    else:
        err.print(
            f"kubectl not found (${KUBECTL_ENV}, {KUBE_TOOLS} or PATH): run\n"
            f"  {shlex.join(command)}\nand open {url}",
            highlight=False,
            soft_wrap=True,
        )
        for ingress in ingresses:
            err.print(f"or through its Ingress: {ingress}", highlight=False)
    raise typer.Exit(0 if ingresses else 1)


def _wait_forwarding(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + PORT_FORWARD_TIMEOUT_S
    while not ports.listening(port):
        if proc.poll() is not None:
            raise fail(f"kubectl port-forward failed: {_stderr(proc)}")
        if time.monotonic() > deadline:
            raise fail(
                f"kubectl port-forward did not listen on {port} within "
                f"{PORT_FORWARD_TIMEOUT_S:.0f} s"
            )
        time.sleep(0.2)


def _stderr(proc: subprocess.Popen[str]) -> str:
    text = proc.stderr.read().strip() if proc.stderr is not None else ""
    return text.splitlines()[-1] if text else f"exit code {proc.returncode}"


def _ingresses(api: RestApi, service: str) -> list[str]:
    """Ingress URLs for the JobManager's Service; none when they cannot be listed (RBAC may
    not allow it: the port-forward is the answer then)."""
    from kubernetes import client  # noqa: PLC0415 - see TYPE_CHECKING above

    try:
        answer = client.NetworkingV1Api(api.api_client).list_namespaced_ingress(
            api.namespace, _preload_content=False, _request_timeout=10
        )
        return ingress_urls(json.loads(cast(Any, answer).data), service)
    except Exception:  # ApiException (403, 404), connection errors: no Ingress to offer
        return []


# -- top ---------------------------------------------------------------------------------


class Sampler:
    """Looks at running jobs through Flink's REST API, remembering which metric ids each vertex
    offers (they do not change while its tasks run)."""

    def __init__(self, client: FlinkClient) -> None:
        self.client = client
        self._wanted: dict[tuple[str, str], list[str]] = {}

    def sample(self, job_id: str) -> view.JobSample | None:
        """None when Flink no longer knows the job."""
        detail = self.client.job_if_known(job_id)
        if detail is None:
            return None
        metrics = {}
        for vertex in detail.get("vertices") or []:
            vid = str(vertex["id"])
            wanted = self._wanted.get((job_id, vid))
            if not wanted:
                wanted = view.wanted_metrics(self.client.subtask_metrics(job_id, vid))
                if wanted:
                    self._wanted[(job_id, vid)] = wanted
            if wanted:
                metrics[vid] = self.client.subtask_metrics(job_id, vid, wanted, agg="sum")
        return view.job_sample(job_id, detail, metrics, self.client.checkpoints(job_id))


def frames(
    store: SqliteStore, client: FlinkClient, interval: float, iterations: int
) -> Iterator[tuple[str, list[view.Row], dict[str, Any] | None]]:
    """(header, rows, cluster overview) every `interval` seconds; `iterations` 0: forever."""
    sampler = Sampler(client)
    n = 0
    while True:
        started = time.monotonic()
        jobs = store.list()
        overview: dict[str, Any] | None
        error = None
        try:
            overview = client.overview()
        except FlinkError as e:
            overview, error = None, str(e)
        rows = []
        for job in jobs:
            current = None
            if overview is not None and job.status.job_id:
                try:
                    current = sampler.sample(job.status.job_id)
                except FlinkError:
                    current = None  # a job going away between two requests; next frame
            rows.append(view.row(job, current))
        yield view.header(client.base_url, overview, error), rows, overview
        n += 1
        if iterations and n >= iterations:
            return
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


def _table(header: str, rows: list[view.Row], now_ms: int) -> Group:
    table = Table(*view.COLUMNS, box=None, header_style="bold", pad_edge=False)
    for r in rows:
        table.add_row(*r.cells(now_ms))
    if not rows:
        return Group(Text(header), Text("No FlinkJobs. Submit one with `eddyline submit`."))
    stamp = datetime.now().strftime("%H:%M:%S")  # the viewer's wall clock
    return Group(Text(f"{header} · {stamp} · Ctrl-C to quit"), table)


@command
def top(
    state_dir: StateDir = None,
    flink_url: Annotated[
        str | None, typer.Option(help="Flink REST endpoint \\[the local stack's]")
    ] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="seconds between refreshes")] = 2.0,
    iterations: Annotated[
        int, typer.Option("--iterations", "-n", min=0, help="stop after N refreshes; 0 = never")
    ] = 0,
    output: OutputOpt = Output.table,
) -> None:
    """A live view of the jobs until Ctrl-C: lifecycle, parallelism, records in and out per
    second, Kafka lag, last checkpoint, last savepoint and dead-lettered records per second.
    `-o json` prints one JSON document per refresh (one per line)."""
    settings = settings_from(state_dir=state_dir)
    if flink_url is None:
        current = state.load(settings.state_dir)
        flink_url = current.flink_url if current is not None else settings.flink_url
    store = SqliteStore(settings.controller_db)
    with FlinkClient(flink_url, timeout=10.0) as client:
        updates = frames(store, client, interval, iterations)
        try:
            if output == Output.json:
                for header, rows, overview in updates:
                    now = _now_ms()
                    doc = {
                        "time": datetime.now(UTC).isoformat(timespec="seconds"),
                        "flinkUrl": flink_url,
                        "flinkAnswers": overview is not None,
                        "header": header,
                        "jobs": [r.document(now) for r in rows],
                    }
                    typer.echo(json.dumps(doc))
            elif console.is_terminal:
                with Live(console=console, auto_refresh=False) as live:
                    for header, rows, _ in updates:
                        live.update(_table(header, rows, _now_ms()), refresh=True)
            else:
                for header, rows, _ in updates:
                    console.print(_table(header, rows, _now_ms()))
        except KeyboardInterrupt:
            pass


def _now_ms() -> int:
    return int(time.time() * 1000)
