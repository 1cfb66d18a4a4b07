"""Command-line flags every job shares (the contract in ARCHITECTURE.md), and duration parsing."""

from __future__ import annotations

import argparse
import re

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str) -> int:
    """'500ms', '5s', '30m', '1h', '7d' → milliseconds. ValueError naming the text otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 5s, 30m, 1h, 7d)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def duration(text: str) -> int:
    """argparse type for durations: a usage error naming the text when it is not one."""
    try:
        return duration_ms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser(
    name: str, description: str | None, output_topic: str, python_mode: str = "process"
) -> argparse.ArgumentParser:
    """A parser with the flags all jobs take; jobs add their own on the result. `python_mode`:
    the job's own Python execution mode, used when neither the flag nor the configuration
    (python.execution-mode, what the controller sets from spec.job.pythonExecutionMode) says."""
    p = argparse.ArgumentParser(prog=f"python -m jobs.{name}", description=description)
    p.add_argument("--bootstrap-servers", default="localhost:9092")
    p.add_argument("--group-id", default=name, help="consumer group (default: the job's name)")
    p.add_argument("--output-topic", default=output_topic)
    p.add_argument("--late-topic", default="late-events")
    p.add_argument("--dead-letter-topic", default="dead-letter")
    p.add_argument("--max-out-of-orderness", type=duration, default="5s", metavar="DURATION")
    p.add_argument(
        "--idle-timeout",
        type=duration,
        default="10s",
        metavar="DURATION",
        help="a partition without events this long stops holding back the watermark",
    )
    # Both default to the submission's configuration (what the controller sets from the spec),
    # else 10 s and 1: a flag given here overrides whatever the cluster was told.
    p.add_argument(
        "--checkpoint-interval",
        type=duration,
        default=None,
        metavar="DURATION",
        help="default: execution.checkpointing.interval if configured, else 10s",
    )
    p.add_argument(
        "--parallelism",
        type=int,
        default=None,
        help="default: parallelism.default if configured, else 1",
    )
    p.add_argument(
        "--python-execution-mode",
        choices=("process", "thread"),
        default=None,
        help="where the job's Python functions run: a Python worker process fed over gRPC "
        "(process) or the TaskManager's JVM through PEMJA (thread: no serialisation, but one "
        "GIL for every slot of a TaskManager, and pandas functions still run in a process). "
        f"Default: python.execution-mode if configured, else {python_mode}",
    )
    p.set_defaults(job_python_execution_mode=python_mode)
    p.add_argument(
        "--starting-offsets",
        choices=("committed", "earliest", "latest"),
        default="committed",
        help="committed falls back to earliest",
    )
    return p
