"""Every port of the local stack listens on loopback only (issue 20), with a Python job running:
the servers, the controller, the JobManager's Python driver, the TaskManagers' Python workers.

The one exception Flink gives no setting for: the Beam Fn API servers (control, data, state,
logging, provisioning, artifacts) that a TaskManager starts for its Python workers listen on
every interface (Beam's ServerFactory binds them with NettyServerBuilder.forPort). They are
recognised as a TaskManager's listeners that speak gRPC (HTTP/2), and listed; among them must be
every one its Python workers are connected to or were given on their command line."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import time
import uuid
from dataclasses import dataclass

import psutil

from deploy import kafka_io
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.local.stack import state
from tests.integration.stacks import RunningStack


@dataclass(frozen=True)
class Listener:
    pid: int
    process: str
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port} pid {self.pid} ({self.process})"


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%", maxsplit=1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def stack_processes(stack: RunningStack) -> list[psutil.Process]:
    """The supervisor, every server and everything they started (drivers, Python workers)."""
    current = state.load(stack.settings.state_dir)
    assert current is not None
    roots = [current.supervisor_pid, *(c.pid for c in current.components if c.pid)]
    found: dict[int, psutil.Process] = {}
    for pid in roots:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


ENDPOINT_ARG = re.compile(r"--\w+_endpoint=\S*:(\d+)")
PROCESS_MARKERS = (
    "TaskManagerRunner",
    "StandaloneSessionClusterEntrypoint",
    "kafka.Kafka",
    "deploy.cli",
    "pyflink.fn_execution",
    "PythonDriver",
)


def _name(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "?"
    for marker in PROCESS_MARKERS:
        if any(marker in part for part in cmd):
            return marker
    return " ".join(cmd)[:60]


def listeners(procs: list[psutil.Process]) -> list[Listener]:
    out = []
    for proc in procs:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        out += [
            Listener(proc.pid, _name(proc), c.laddr.ip, c.laddr.port)
            for c in conns
            if c.status == psutil.CONN_LISTEN
        ]
    return sorted(out, key=lambda li: (li.pid, li.port))


def python_worker_peers(procs: list[psutil.Process]) -> dict[int, set[int]]:
    """For each TaskManager JVM: the ports of its Beam Fn API servers, as its Python workers
    name them (`--provision_endpoint=localhost:PORT`, … in their command line) or are
    connected to (control, data, state and logging)."""
    peers: dict[int, set[int]] = {}
    for proc in procs:
        if _name(proc) != "TaskManagerRunner":
            continue
        ports: set[int] = set()
        for child in proc.children(recursive=True):
            try:
                conns = child.net_connections(kind="inet")
                cmdline = child.cmdline()
            except psutil.Error:
                continue
            established = [c for c in conns if c.raddr and c.status == psutil.CONN_ESTABLISHED]
            ports |= {c.raddr.port for c in established}
            ports |= {int(m[1]) for arg in cmdline if (m := ENDPOINT_ARG.fullmatch(arg))}
        peers[proc.pid] = ports
    return peers


# An HTTP/2 client's connection preface and an empty SETTINGS frame; a gRPC server answers with
# a SETTINGS frame of its own (type 4).
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def speaks_grpc(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
            sock.sendall(HTTP2_PREFACE)
            head = b""
            while len(head) < 9 and (chunk := sock.recv(9 - len(head))):
                head += chunk
    except OSError:
        return False
    return len(head) == 9 and head[3] == 4


def _python_job_running(stack: RunningStack, flink: FlinkClient) -> str:
    topic = f"loopback-{uuid.uuid4().hex[:8]}"
    kafka_io.create_topics(stack.bootstrap_servers, {topic: 1, f"{topic}-out": 1})
    events = [(None, json.dumps({"id": i, "word": "w"}).encode()) for i in range(50)]
    kafka_io.produce(stack.bootstrap_servers, topic, events)
    job_id = pyjobs.submit(
        flink,
        "jobs.smoke",
        [
            "--bootstrap-servers", stack.bootstrap_servers, "--input-topic", topic,
            "--output-topic", f"{topic}-out", "--group-id", topic,
        ],
    )  # fmt: skip
    # Running with its Python worker up: the output is there only once a worker processed it.
    kafka_io.read_all(stack.bootstrap_servers, f"{topic}-out", expected=len(events))
    return job_id


def test_every_port_of_the_stack_listens_on_loopback_only(stack: RunningStack) -> None:
    with FlinkClient(stack.flink_url) as flink:
        job_id = _python_job_running(stack, flink)
        try:
            deadline = time.monotonic() + 60
            while True:
                procs = stack_processes(stack)
                workers = [p for p in procs if _name(p) == "pyflink.fn_execution"]
                if workers or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert workers, "no Python worker process under the stack's TaskManagers"
            found = listeners(procs)
            peers = python_worker_peers(procs)
            wide = [li for li in found if not is_loopback(li.ip)]
            # Asked while the job runs: its Beam servers stop with it.
            fn_api = [li for li in wide if li.pid in peers and speaks_grpc(li.port)]
        finally:
            flink.cancel(job_id)

    exposed = [li for li in wide if li not in fn_api]
    listing = "\n".join(str(li) for li in found)
    assert not exposed, (
        "listening beyond loopback:\n"
        + "\n".join(str(li) for li in exposed)
        + f"\nevery listener:\n{listing}"
    )
    # What the Python workers use beyond loopback is among those recognised as Beam's.
    used = {(li.pid, li.port) for li in wide if li.port in peers.get(li.pid, set())}
    assert used, f"no Beam Fn API server found through the Python workers:\n{listing}"
    assert used <= {(li.pid, li.port) for li in fn_api}
    # The servers themselves were seen: Kafka, REST, the metrics ports, the controller's.
    ports = {li.port for li in found}
    s = stack.settings
    for port in (s.kafka_port, s.flink_port, s.flink_rpc_port, s.metrics_port,
                 s.taskmanager_metrics_port(1), s.controller_port):  # fmt: skip
        assert port in ports, f"port {port} not among the stack's listeners:\n{listing}"
    print(f"every listener of the stack:\n{listing}\nBeam Fn API (all interfaces): {fn_api}")
