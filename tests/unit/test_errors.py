"""The error tree (deploy/errors.py): which answers are temporary (wait and try again) and which
permanent (something must change first), classified once where they arrive — the Flink REST
client, the Kubernetes API layer — and what the controller's loop does with each kind."""

from __future__ import annotations

import copy
import inspect
import logging
import pickle
import re
from dataclasses import dataclass, field

import httpx
import pytest

from deploy import errors, kafka_io
from deploy.controller.loop import Controller
from deploy.controller.model import Action, Observation
from deploy.errors import (
    EddylineError,
    FlinkConflictError,
    FlinkError,
    FlinkNotFoundError,
    FlinkRefusedError,
    FlinkUnavailableError,
    FlinkUnreachableError,
    KubeConfigError,
    KubeConflictError,
    KubeError,
    KubeGoneError,
    KubeNotFoundError,
    KubeRefusedError,
    KubeUnavailableError,
    PermanentError,
    ProgramError,
    SpecError,
    TemporaryError,
)
from deploy.flink.rest import FlinkClient
from deploy.kube import api, statecheck
from deploy.localkube import procs
from deploy.spec import FlinkJob, JobStatus, parse

# -- classification by HTTP status ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "leaf", "temporary"),
    [
        (None, FlinkUnreachableError, True),  # no answer at all
        (408, FlinkUnavailableError, True),
        (429, FlinkUnavailableError, True),
        (500, FlinkUnavailableError, True),
        (503, FlinkUnavailableError, True),  # a JobManager restarting, a proxy in between
        (409, FlinkConflictError, True),
        (404, FlinkNotFoundError, False),
        (400, FlinkRefusedError, False),
        (403, FlinkRefusedError, False),
        (422, FlinkRefusedError, False),
    ],
)
def test_a_flink_error_is_the_leaf_its_status_means(
    status: int | None, leaf: type[FlinkError], temporary: bool
) -> None:
    e = FlinkError("Flink REST GET /x answered", status)
    assert type(e) is leaf
    assert e.status == status
    assert str(e) == "Flink REST GET /x answered"
    assert isinstance(e, TemporaryError) is temporary
    assert isinstance(e, PermanentError) is not temporary


@pytest.mark.parametrize(
    ("status", "leaf", "temporary"),
    [
        (0, KubeUnavailableError, True),  # unreachable
        (408, KubeUnavailableError, True),
        (429, KubeUnavailableError, True),  # API priority and fairness said "later"
        (500, KubeUnavailableError, True),
        (503, KubeUnavailableError, True),  # the API server while etcd elects a leader
        (504, KubeUnavailableError, True),
        (409, KubeConflictError, True),  # a resourceVersion conflict: read again, write again
        (410, KubeGoneError, True),  # a watch too old: list again
        (404, KubeNotFoundError, False),
        (400, KubeRefusedError, False),
        (401, KubeRefusedError, False),
        (403, KubeRefusedError, False),  # RBAC: needs a Role change
        (422, KubeRefusedError, False),  # the CRD's schema refuses the document
    ],
)
def test_a_kube_error_is_the_leaf_its_status_means(
    status: int, leaf: type[KubeError], temporary: bool
) -> None:
    e = KubeError("the answer", status, "Reason")
    assert type(e) is leaf
    assert (e.status, e.reason) == (status, "Reason")
    assert isinstance(e, TemporaryError) is temporary
    assert isinstance(e, PermanentError) is not temporary


def test_a_named_leaf_keeps_its_class_whatever_its_status() -> None:
    """Only the base picks a leaf from the status: a caller that knows better says so."""
    program = ProgramError("jobs.x failed before it became a job", status=500)
    assert type(program) is ProgramError
    assert program.status == 500
    assert isinstance(program, PermanentError)
    assert type(FlinkUnavailableError("no TaskManager is registered")) is FlinkUnavailableError
    config = KubeConfigError("cannot connect to Kubernetes with a kubeconfig")
    assert (type(config), config.status) == (KubeConfigError, 0)
    assert isinstance(config, PermanentError)


def test_an_invalid_spec_is_permanent() -> None:
    assert isinstance(SpecError("spec", ["spec.job.entry: no module"]), PermanentError)


def test_errors_survive_pickling_and_copying_with_their_class_and_status() -> None:
    for e in (FlinkError("busy", 503), KubeError("gone", 410, "Expired"), ProgramError("p", 400)):
        for again in (pickle.loads(pickle.dumps(e)), copy.copy(e)):
            assert type(again) is type(e)
            assert str(again) == str(e)
            assert again.status == e.status


# -- one tree -------------------------------------------------------------------------------------


def _error_classes() -> list[type[BaseException]]:
    return [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, BaseException) and c.__module__ == errors.__name__
    ]


def test_every_error_is_an_eddyline_error_drawn_in_the_tree() -> None:
    doc = errors.__doc__ or ""
    for cls in _error_classes():
        assert issubclass(cls, EddylineError), cls
        drawn = re.search(rf"^[│├└─ ]*{cls.__name__}\b", doc, re.MULTILINE)
        assert drawn, f"{cls.__name__} is not drawn in the tree of deploy/errors.py"


def test_no_error_is_both_temporary_and_permanent() -> None:
    for cls in _error_classes():
        assert not (issubclass(cls, TemporaryError) and issubclass(cls, PermanentError)), cls


def test_errors_defined_elsewhere_before_are_the_same_classes_there() -> None:
    assert api.KubeError is errors.KubeError
    assert procs.ClusterError is errors.ClusterError
    assert statecheck.StateCheckError is errors.StateCheckError
    assert kafka_io.DeliveryFailures is errors.DeliveryFailures


# -- the Flink REST client classifies at the edge ---------------------------------------------


def _client(answer: httpx.Response | Exception) -> FlinkClient:
    def respond(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return FlinkClient("http://flink:8081", transport=httpx.MockTransport(respond))


@pytest.mark.parametrize(
    ("answer", "leaf"),
    [
        (httpx.ConnectError("connection refused"), FlinkUnreachableError),
        (httpx.ReadTimeout("timed out"), FlinkUnreachableError),
        (httpx.RemoteProtocolError("peer closed connection"), FlinkUnreachableError),
        (httpx.Response(503, text="injected by the fault proxy"), FlinkUnavailableError),
        (httpx.Response(500, json={"errors": ["boom"]}), FlinkUnavailableError),
        (httpx.Response(409, json={"errors": ["job has ended"]}), FlinkConflictError),
        (httpx.Response(404, json={"errors": ["Job j1 not found"]}), FlinkNotFoundError),
        (httpx.Response(400, json={"errors": ["bad request"]}), FlinkRefusedError),
    ],
    ids=["refused", "timeout", "reset", "503", "500", "409", "404", "400"],
)
def test_the_flink_client_raises_the_leaf_the_answer_means(
    answer: httpx.Response | Exception, leaf: type[FlinkError]
) -> None:
    with _client(answer) as client, pytest.raises(leaf):
        client.job("j1")
    # The JobManager's log is read as text, but its failures are classified the same way.
    with _client(answer) as client, pytest.raises(leaf):
        client.jobmanager_log()


# -- what the loop does with each kind ------------------------------------------------------------


def _job(name: str) -> FlinkJob:
    return parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": name},
            "spec": {"job": {"entry": "jobs.ledger"}},
        }
    )


@dataclass
class FailingStore:
    """A store whose reads of some jobs fail as told; the rest of the JobStore does nothing."""

    fail: dict[str, Exception] = field(default_factory=dict)

    def get(self, name: str) -> FlinkJob | None:
        if name in self.fail:
            raise self.fail[name]
        return None

    def list(self) -> list[FlinkJob]:
        return [_job(name) for name in sorted(self.fail)]

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        return True

    def release(self, name: str, holder: str) -> None:
        pass

    def write_status(self, name: str, status: JobStatus, holder: str | None = None) -> bool:
        return True


class IdleRuntime:
    def observe(self, job: FlinkJob, now: int) -> Observation:
        return Observation(now=now)

    def act(self, job: FlinkJob, action: Action) -> None:
        pass


def test_the_loop_waits_out_a_temporary_error_and_reports_a_permanent_one_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FailingStore(
        {
            "busy": KubeError("etcdserver: leader changed", 503),
            "forbidden": KubeError('flinkjobs "forbidden" is forbidden', 403),
            "buggy": KeyError("spec"),
        }
    )
    controller = Controller(store, IdleRuntime())  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="eddyline.controller"):
        controller.run_once()
    by_job = {r.getMessage().split(":")[0]: r for r in caplog.records}
    assert by_job["busy"].levelno == logging.WARNING
    assert "postponed: etcdserver: leader changed" in by_job["busy"].getMessage()
    assert by_job["busy"].exc_info is None
    assert by_job["forbidden"].levelno == logging.ERROR
    assert by_job["forbidden"].exc_info is None
    assert by_job["buggy"].exc_info is not None  # a bug keeps its traceback

    def errors_of(name: str, kind: str) -> float:
        labels = {"job_name": name, "kind": kind}
        value = controller.metrics.registry.get_sample_value(
            "eddyline_controller_errors_total", labels
        )
        return value or 0.0

    assert errors_of("busy", "temporary") == 1
    assert errors_of("forbidden", "permanent") == 1
    assert errors_of("buggy", "internal") == 1
