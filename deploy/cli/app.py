"""The `eddyline` command line: the app, and which module holds each command (in --help order).

stack.py       up, down, status         the local stack
generate.py    generate                 test events to Kafka
jobs.py        submit, list, describe   FlinkJobs in the local store or, with --kube, a cluster
lifecycle.py   savepoint, suspend, resume, scale
jobs.py        delete
controller.py  controller               the controller in this process
monitor.py     dashboard, top           watching the jobs
diff.py        diff                     what a spec change would do, and to the job's state
"""

from __future__ import annotations

import typer

from deploy.cli import controller, diff, generate, jobs, lifecycle, monitor, stack

app = typer.Typer(
    help="Eddyline: run PyFlink jobs on a real Kafka + Flink stack, locally or on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
)

for command, command_name in (
    (stack.up, "up"),
    (stack.down, "down"),
    (stack.status, "status"),
    (generate.generate, "generate"),
    (jobs.submit, "submit"),
    (jobs.list_jobs, "list"),
    (jobs.describe, "describe"),
    (diff.diff, "diff"),
    (lifecycle.savepoint, "savepoint"),
    (lifecycle.suspend, "suspend"),
    (lifecycle.resume, "resume"),
    (lifecycle.scale, "scale"),
    (jobs.delete, "delete"),
    (controller.controller, "controller"),
    (monitor.dashboard, "dashboard"),
    (monitor.top, "top"),
):
    app.command(command_name)(command)


if __name__ == "__main__":
    app()
