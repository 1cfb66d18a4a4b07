"""Eddyline's exceptions. Each says what happened and what to do next.

EddylineError
├── StackError                  the local stack cannot be started or reached
│   ├── PortInUseError          a port the stack needs is taken
│   ├── MissingToolError        Java (or the jars) are not installed
│   ├── ComponentStartError     a server died or never became healthy while starting
│   └── StackNotRunningError    a command needs the stack and it is down
├── FlinkError                  the Flink REST API refused or failed a request
├── SpecError                   a FlinkJob spec is invalid (every problem, by field path)
└── ControllerError             the controller's store refused a request (unknown job, …)
"""

from __future__ import annotations

from pathlib import Path


class EddylineError(Exception):
    """Base of every error Eddyline raises on purpose."""


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


class MissingToolError(StackError):
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


class FlinkError(EddylineError):
    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class SpecError(EddylineError):
    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source} is not a valid FlinkJob ({len(problems)} problems):\n{listed}")


class ControllerError(EddylineError):
    pass
