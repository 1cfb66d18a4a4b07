"""Every error Eddyline raises on purpose, in one tree. Each says what happened and what to do next.

EddylineError
├── TemporaryError                  trying again later can help
├── PermanentError                  trying the same again cannot: something must change first
├── StackError                      the local stack cannot be started or reached
│   ├── PortInUseError              a port the stack needs is taken
│   ├── MissingToolError        (P) Java, the jars or a tool are not installed
│   ├── ComponentStartError         a server died or never became healthy while starting
│   └── StackNotRunningError        a command needs the stack and it is down
├── ClusterError                    the local Kubernetes node could not start or stop
├── PkiError                        openssl failed making a control plane's certificates
├── StateCheckError                 Flink's state location (a bucket) cannot be used
├── DeliveryFailures                messages were not delivered to Kafka
├── KafkaError                      Kafka could not be used (the message names the broker)
│   ├── KafkaUnreachableError   (T) no answer: the broker is down, unreachable or slow
│   └── KafkaAccessError        (P) the broker refused us: credentials, TLS trust or an ACL
├── SchemaError                     the spec model holds a JSON Schema construct a CRD cannot
├── SpecError                   (P) a FlinkJob spec is invalid (every problem, by field path)
├── ControllerError                 the controller's store refused a request (unknown job, …)
│   └── StoreUnavailableError   (T) the store's server was unreachable or busy
├── FlinkError                      a request to Flink's REST API failed (.status: HTTP status)
│   ├── FlinkUnavailableError   (T) 408, 429, 5xx: Flink is busy, restarting or failing inside
│   │   └── FlinkUnreachableError (T) no answer at all: refused, reset, timed out
│   ├── FlinkConflictError      (T) 409: not in this state (cancelling a job that has ended)
│   ├── FlinkNotFoundError      (P) 404: no such job, jar or savepoint trigger
│   ├── FlinkRefusedError       (P) another 4xx: Flink will not do what was asked
│   └── ProgramError            (P) the job's program failed before it became a job
└── KubeError                       a request to the Kubernetes API failed (.status, .reason)
    ├── KubeUnavailableError    (T) unreachable, 408, 429, 5xx (503 while it elects a leader)
    ├── KubeConflictError       (T) 409: changed meanwhile, or exists already: read it again
    ├── KubeGoneError           (T) 410: a watch too old to resume from: list again
    ├── KubeNotFoundError       (P) 404: no such object
    ├── KubeRefusedError        (P) another 4xx: forbidden (RBAC), invalid (the CRD's schema)
    └── KubeConfigError         (P) no credentials to connect with (kubeconfig, service account)

(T) is a TemporaryError too, (P) a PermanentError — kopf's distinction, so that what to do next
is a class to catch rather than status codes to compare. A temporary error is waited out: the
next tick (after a backoff) tries again, and the controller logs it in one line, not as a bug.
A permanent one needs a change first (the spec, the RBAC rules, the installation); the controller
records it in the job's status and, for a submission, stops retrying after the spec's
restartPolicy.maxRetries. An error that is neither is retried with a backoff, as kopf retries an
unexpected exception.

`FlinkError(message, status)` and `KubeError(message, status)` give the leaf their status means,
as `OSError(errno.ENOENT, …)` gives a FileNotFoundError: the REST clients classify an answer once,
where it arrives, and callers catch the class they can handle (a fake server raising
`KubeError("…", 404)` raises a KubeNotFoundError, like the real one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

# Statuses a later request can get past: a timeout, a conflict with a change in flight, rate
# limiting, and every server error (503 while the API server elects a leader or a JobManager
# restarts). Every other 4xx answers the request itself and would answer it again.
TEMPORARY_STATUSES = frozenset({408, 409, 429})


def temporary_status(status: int) -> bool:
    """Whether an HTTP error status can go away by itself (see TEMPORARY_STATUSES)."""
    return status in TEMPORARY_STATUSES or status >= 500


class EddylineError(Exception):
    """Base of every error Eddyline raises on purpose."""


class TemporaryError(EddylineError):
    """Trying again later can help: a server unreachable, busy or restarting, a conflict."""


class PermanentError(EddylineError):
    """Trying the same thing again cannot help until something changes (a spec, a permission)."""


# -- the local stack and cluster ------------------------------------------------------------------


class StackError(EddylineError):
    pass


class PortInUseError(StackError):
    def __init__(self, purpose: str, port: int) -> None:
        self.purpose = purpose
        self.port = port
        super().__init__(
            f"port {port} ({purpose}) is already in use: stop what listens there "
            "or choose another port (see `eddyline up --help`)"
        )


class MissingToolError(StackError, PermanentError):
    pass


class ComponentStartError(StackError):
    def __init__(self, component: str, cause: str, log: Path | None) -> None:
        self.component = component
        self.cause = cause
        self.log = log
        where = f"; log: {log}" if log else ""
        super().__init__(f"{component} failed to start: {cause}{where}")


class StackNotRunningError(StackError):
    pass


class ClusterError(EddylineError):
    """The local cluster could not start or stop; the message says what and where to look."""


class PkiError(EddylineError):
    """openssl failed; the message has its error output."""


class StateCheckError(EddylineError):
    """The state location cannot be used; the message says which and why."""


class DeliveryFailures(EddylineError):  # noqa: N818 - the name callers have always used
    """Messages Kafka did not acknowledge; the message says how many and the first reason."""


class KafkaError(EddylineError):
    """Kafka could not be used; the message names the broker and Kafka's own error."""


class KafkaUnreachableError(KafkaError, TemporaryError):
    pass


class KafkaAccessError(KafkaError, PermanentError):
    """The broker answered and refused: wrong credentials, a certificate it or we do not trust,
    or no ACL for what was asked. Retrying the same cannot help until someone changes them."""


class SchemaError(EddylineError, ValueError):
    """The model uses a JSON Schema construct that has no structural equivalent in a CRD."""


# -- specs and the controller's store -------------------------------------------------------------


class SpecError(PermanentError):
    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source} is not a valid FlinkJob ({len(problems)} problems):\n{listed}")


class ControllerError(EddylineError):
    pass


class StoreUnavailableError(ControllerError, TemporaryError):
    pass


# -- Flink's REST API -----------------------------------------------------------------------------


class FlinkError(EddylineError):
    """A request to Flink's REST API failed; `status` is Flink's HTTP status (None: no answer)."""

    def __new__(cls, message: str, status: int | None = None) -> Self:
        # Built from a status, the base gives the leaf the status means (see the module's doc).
        leaf = _flink_leaf(status) if cls is FlinkError else cls
        return super().__new__(leaf, message)  # type: ignore[return-value]

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class FlinkUnavailableError(FlinkError, TemporaryError):
    pass


class FlinkUnreachableError(FlinkUnavailableError):
    """No answer: the request may still have been carried out (a submission may have started)."""


class FlinkConflictError(FlinkError, TemporaryError):
    pass


class FlinkNotFoundError(FlinkError, PermanentError):
    pass


class FlinkRefusedError(FlinkError, PermanentError):
    pass


class ProgramError(FlinkError, PermanentError):
    """The job's Python failed while Flink ran it to build the job (an import, a bad flag)."""


def _flink_leaf(status: int | None) -> type[FlinkError]:
    if status is None:
        return FlinkUnreachableError
    if status == 404:
        return FlinkNotFoundError
    if status == 409:
        return FlinkConflictError
    if temporary_status(status):
        return FlinkUnavailableError
    return FlinkRefusedError if 400 <= status < 500 else FlinkError


# -- the Kubernetes API ---------------------------------------------------------------------------


class KubeError(EddylineError):
    """A request to the Kubernetes API failed; `status` is its HTTP status (0: no answer) and
    `reason` the Status document's (NotFound, Conflict, Forbidden, …)."""

    def __new__(cls, message: str, status: int = 0, reason: str = "") -> Self:
        leaf = _kube_leaf(status) if cls is KubeError else cls
        return super().__new__(leaf, message)  # type: ignore[return-value]

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        super().__init__(message)


class KubeUnavailableError(KubeError, TemporaryError):
    pass


class KubeConflictError(KubeError, TemporaryError):
    pass


class KubeGoneError(KubeError, TemporaryError):
    pass


class KubeNotFoundError(KubeError, PermanentError):
    pass


class KubeRefusedError(KubeError, PermanentError):
    pass


class KubeConfigError(KubeError, PermanentError):
    pass


def _kube_leaf(status: int) -> type[KubeError]:
    if status == 0:
        return KubeUnavailableError
    if status == 404:
        return KubeNotFoundError
    if status == 409:
        return KubeConflictError
    if status == 410:
        return KubeGoneError
    if temporary_status(status):
        return KubeUnavailableError
    return KubeRefusedError if 400 <= status < 500 else KubeError
