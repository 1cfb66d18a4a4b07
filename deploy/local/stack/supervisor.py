"""The stack's supervisor: a detached process that starts Kafka and Flink (and, for job state
in a bucket, an S3 server), keeps them running (restarting a server that dies, with backoff)
and stops them all on SIGTERM.

Started by `eddyline up` as `python -m deploy.local.stack.supervisor SETTINGS_JSON --daemon`; holds
an exclusive lock on `<state>/stack.lock` for its lifetime, which is how others know the stack
is up.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

from deploy.errors import ComponentStartError, StackError
from deploy.flink import health as flink_health
from deploy.local.objectstore import ObjectStore
from deploy.local.stack import (
    components,
    elastic,
    health,
    kafka_auth,
    ports,
    prepare,
    processes,
    s3state,
)
from deploy.local.stack.components import ProcessSpec
from deploy.local.stack.state import (
    ComponentState,
    Phase,
    StackState,
    lock_file,
    register_stack,
    save,
)
from deploy.settings import StackSettings

log = logging.getLogger("eddyline.supervisor")

POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
RESTART_WINDOW_SECONDS = 300.0
ELASTIC_EVERY_SECONDS = 5.0


@dataclass
class Managed:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    recent: list[float] = field(default_factory=list)
    next_start: float = 0.0

    def state(self) -> ComponentState:
        pid = self.proc.pid if self.proc and self.proc.poll() is None else None
        return ComponentState(
            name=self.spec.name,
            kind=self.spec.kind,
            pid=pid,
            port=self.spec.port,
            metrics_port=self.spec.metrics_port,
            version=self.spec.version,
            log=self.spec.main_log(),
            restarts=self.restarts,
            started_at=processes.create_time(pid) if pid else None,
        )


def restart_delay(recent_restarts: int) -> float:
    """Backoff before restarting a server that died: 1 s, 2 s, 4 s … capped at 30 s."""
    return float(min(MAX_BACKOFF_SECONDS, 2 ** max(0, recent_restarts - 1)))


class Supervisor:
    def __init__(self, settings: StackSettings) -> None:
        if settings.kafka_secured and settings.kafka_internal_port is None:
            # The broker's loopback listener (kafka_auth): any free port, fixed for this run.
            settings = settings.model_copy(
                update={"kafka_internal_port": ports.free_port("127.0.0.1")}
            )
        self.settings = settings
        self.managed: list[Managed] = []
        self.stopping = False
        self.state = StackState(
            supervisor_pid=os.getpid(),
            flink_url=settings.flink_url,
            bootstrap_servers=settings.bootstrap_servers,
            external_bootstrap_servers=settings.external_bootstrap_servers,
            slots_per_taskmanager=settings.slots,
            max_taskmanagers=max(settings.max_taskmanagers, settings.taskmanagers),
            state_storage=settings.state_storage,
            checkpoint_dir=settings.checkpoint_dir,
            savepoint_dir=settings.savepoint_dir,
        )
        # With state_storage s3: the stack's S3 server, and its keys for the Flink processes.
        self.store: ObjectStore | None = None
        self.aws: dict[str, str] = {}
        self._idle_since: dict[str, float] = {}
        self._next_elastic = 0.0
        # With a secured broker: whether its own user has its ACLs yet (granted once it answers).
        self._granted = not settings.kafka_secured

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self._start_all()
            self._wait_healthy()
            self._set_phase(Phase.RUNNING)
            log.info("stack healthy")
            self._watch()
            return 0
        except StackError as e:
            log.error("%s", e)
            self.state.error = str(e)
            self.state.error_log = e.log if isinstance(e, ComponentStartError) else None
            self._set_phase(Phase.FAILED)
            return 1
        finally:
            self._stop_all()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        self.stopping = True

    def _set_phase(self, phase: Phase) -> None:
        if self.state.phase == Phase.FAILED and phase == Phase.STOPPED:
            return  # keep the failure visible to `up`, which reads it after we exit
        self.state.phase = phase
        self._save()

    def _save(self) -> None:
        self.state.components = [m.state() for m in self.managed]
        save(self.settings.state_dir, self.state)

    # -- start -----------------------------------------------------------------------------

    def _start_all(self) -> None:
        java_bin = prepare.check_tools(self.settings)
        specs: list[ProcessSpec] = []
        if self.settings.state_storage == "s3":
            # The keys kept in the state folder (new ones the first time), a port of its own.
            keys = s3state.credentials(self.settings.state_dir)
            port = self.settings.objectstore_port or ports.free_port(self.settings.host)
            self.store = s3state.store(self.settings, port, keys)
            self.aws = self.store.aws_env()
            self.state.objectstore_endpoint = self.store.endpoint
            specs.append(components.objectstore_server(self.settings, port, keys))
        prepare.write_configs(self.settings, self.store)
        if self.settings.kafka_secured:
            # Before any probe: our own health checks are Kafka clients of the secured broker.
            self.state.kafka_client_config = kafka_auth.client_config_file(self.settings.state_dir)
            register_stack(self.state)
        prepare.format_kafka_storage(self.settings, java_bin)
        specs += [
            components.kafka(self.settings, java_bin),
            components.jobmanager(self.settings, self.aws),
        ]
        for i in range(1, self.settings.taskmanagers + 1):
            port = ports.free_port(self.settings.host)
            specs.append(components.taskmanager(self.settings, i, port, aws=self.aws))
        if self.settings.controller:
            specs.append(components.controller(self.settings))
        self.managed = [Managed(spec) for spec in specs]
        for m in self.managed:
            m.proc = processes.start(m.spec)
            log.info("started %s (pid %d)", m.spec.name, m.proc.pid)
        self._save()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.settings.start_timeout
        while not self.stopping:
            for m in self.managed:
                assert m.proc is not None
                code = m.proc.poll()
                if code is not None:
                    cause = processes.failure_cause([m.spec.log, m.spec.main_log()])
                    raise ComponentStartError(
                        m.spec.name,
                        f"exited with code {code}" + (f": {cause}" if cause else ""),
                        m.spec.main_log(),
                    )
            if self._healthy():
                return
            if time.monotonic() > deadline:
                slow = [m.spec.name for m in self.managed if not self._component_healthy(m)]
                first = next(m for m in self.managed if m.spec.name == slow[0]) if slow else None
                raise ComponentStartError(
                    ", ".join(slow) or "stack",
                    f"not healthy after {self.settings.start_timeout:.0f} s",
                    first.spec.main_log() if first else None,
                )
            time.sleep(POLL_SECONDS)

    def _component_healthy(self, m: Managed) -> bool:
        kafka_ok = m.spec.kind == components.KAFKA and health.kafka_answers(
            self.settings.bootstrap_servers
        )
        objectstore_ok = (
            m.spec.kind == components.OBJECTSTORE
            and self.store is not None
            and self.store.probe() is None
        )
        registered = flink_health.flink_taskmanagers(self.settings.flink_url)
        return health.component_healthy(
            m.spec.kind, m.spec.name, kafka_ok, registered, m.spec.metrics_port, objectstore_ok
        )

    def _healthy(self) -> bool:
        if not health.kafka_answers(self.settings.bootstrap_servers):
            return False
        if not self._granted:
            kafka = next(m for m in self.managed if m.spec.kind == components.KAFKA)
            kafka_auth.grant(self.settings, kafka.spec.main_log())
            self._granted = True
            log.info("granted User:%s its ACLs", kafka_auth.USER)
        registered = flink_health.flink_taskmanagers(self.settings.flink_url)
        wanted = {m.spec.name for m in self.managed if m.spec.kind == "taskmanager"}
        if registered is None or not wanted <= registered:
            return False
        probed = (components.CONTROLLER, components.OBJECTSTORE)
        return all(self._component_healthy(m) for m in self.managed if m.spec.kind in probed)

    # -- keep running ----------------------------------------------------------------------

    def _watch(self) -> None:
        while not self.stopping:
            changed = False
            now = time.monotonic()
            for m in self.managed:
                assert m.proc is not None
                code = m.proc.poll()
                if code is None:
                    continue
                if m.next_start == 0.0:
                    m.recent = [t for t in m.recent if now - t < RESTART_WINDOW_SECONDS]
                    m.next_start = now + restart_delay(len(m.recent) + 1)
                    # The dead server may have left children (Python workers) in its group.
                    processes.stop_groups([m.proc.pid], grace=5.0)
                    log.warning("%s exited with code %d; restarting", m.spec.name, code)
                    changed = True
                elif now >= m.next_start:
                    m.proc = processes.start(m.spec)
                    m.restarts += 1
                    m.recent.append(now)
                    m.next_start = 0.0
                    log.info("restarted %s (pid %d)", m.spec.name, m.proc.pid)
                    changed = True
            if now >= self._next_elastic:
                self._next_elastic = now + ELASTIC_EVERY_SECONDS
                changed = self._elastic(now) or changed
            if changed:
                self._save()
            time.sleep(POLL_SECONDS)

    def _elastic(self, now: float) -> bool:
        """Start or stop extra TaskManagers to match the controller's request for slots."""
        tms = [m for m in self.managed if m.spec.kind == components.TASKMANAGER]
        base = self.settings.taskmanagers
        desired = elastic.desired_taskmanagers(
            elastic.read_request(self.settings.state_dir),
            self.settings.slots,
            base,
            self.state.max_taskmanagers,
        )
        if len(tms) < desired:
            index = max((_index(m.spec.name) for m in tms), default=0) + 1
            host = self.settings.host
            spec = components.taskmanager(
                self.settings, index, ports.free_port(host), ports.free_port(host), aws=self.aws
            )
            m = Managed(spec)
            m.proc = processes.start(spec)
            self.managed.append(m)
            log.info("started %s (pid %d): jobs want more task slots", spec.name, m.proc.pid)
            return True
        if len(tms) == desired:
            self._idle_since.clear()
            return False
        idle = flink_health.flink_idle_taskmanagers(self.settings.flink_url)
        if idle is None:
            return False  # Flink does not answer: no TaskManager is taken away blind
        extras = []
        for m in tms:
            # Any idle TaskManager may go, not only one started later: Flink may have placed a
            # rescaled-down job on the newer one. to_stop keeps `desired` (≥ base) running.
            if m.spec.name in idle:
                self._idle_since.setdefault(m.spec.name, now)
            else:
                self._idle_since.pop(m.spec.name, None)
            extras.append(
                elastic.Extra(m.spec.name, _index(m.spec.name), self._idle_since.get(m.spec.name))
            )
        stop = set(elastic.to_stop(extras, len(tms), desired, now))
        for m in [m for m in tms if m.spec.name in stop]:
            if m.proc is not None:
                processes.stop_groups([m.proc.pid], grace=10.0)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    m.proc.wait(timeout=5)
            self.managed.remove(m)
            self._idle_since.pop(m.spec.name, None)
            log.info("stopped %s: idle and no longer wanted", m.spec.name)
        return bool(stop)

    # -- stop ------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        if self.state.phase != Phase.FAILED:
            self._set_phase(Phase.STOPPING)
        # The controller first (it must not "repair" jobs as the cluster goes), then the
        # TaskManagers, the JobManager and Kafka: jobs stop before their broker; the S3 server
        # last, once no Flink process may still write state to it.
        order = self.managed
        groups = (["controller"], ["taskmanager"], ["jobmanager"], ["kafka"], ["objectstore"])
        for kind_group in groups:
            pgids = [m.proc.pid for m in order if m.proc and m.spec.kind in kind_group]
            processes.stop_groups(pgids)
        for m in self.managed:
            if m.proc:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    m.proc.wait(timeout=5)
        self._set_phase(Phase.STOPPED)
        log.info("stack stopped")


def _index(taskmanager_name: str) -> int:
    return int(taskmanager_name.rsplit("-", 1)[1])


def _daemonize(log_path: str) -> None:
    """Detach: fork, print the child's pid for the caller, and let the parent exit.

    The supervisor then belongs to no shell or test process, and outlives `eddyline up`.
    """
    pid = os.fork()
    if pid > 0:
        print(pid, flush=True)
        os._exit(0)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    settings = StackSettings.model_validate_json(args[0])
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if "--daemon" in args[1:]:
        log_dir = settings.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        _daemonize(str(log_dir / "supervisor.log"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per health probe would bury what matters in the supervisor's log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    lock = lock_file(settings.state_dir).open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.error("another supervisor already runs the stack in %s", settings.state_dir)
        return 3
    lock.write(str(os.getpid()))
    lock.flush()
    return Supervisor(settings).run()


if __name__ == "__main__":
    sys.exit(main())
