"""`make demo`: the reference jobs on the running local stack, on generated data.

1. A stack check: `jobs.smoke` reads events from Kafka, transforms each in a Python worker and
   writes them back; the output is verified record by record.
2. The three reference jobs — attribution, sessions and the exactly-once ledger — are submitted
   to the controller from their specs in jobs/specs/ over events from the seeded generator; once
   the controller runs them, a short summary of each output is printed. They keep running:
   watch them in the dashboard, change them with `eddyline scale|suspend|resume`.
Exit code 0 only when the smoke output is exact and every reference job runs and writes output.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable

from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from deploy import kafka_io, paths, spec
from deploy.cli.common import EXIT_FAILED, console, print_error, table
from deploy.datagen import generator, loadgen
from deploy.errors import ControllerError, EddylineError
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.flink.states import TERMINAL_STATES
from deploy.local.stack import control
from deploy.local.stack.state import StackState
from deploy.local.store import SqliteStore
from deploy.settings import StackSettings
from deploy.spec import FlinkJob, Lifecycle

EVENTS = 5_000
IN_TOPIC, OUT_TOPIC = "smoke-in", "smoke-out"


def events(n: int) -> list[bytes]:
    words = ["flink", "kafka", "eddyline", "python", "stream", "window", "state"]
    return [
        json.dumps({"id": i, "word": words[i % len(words)] * (1 + i % 3)}).encode()
        for i in range(n)
    ]


def expected(values: list[bytes]) -> Counter[str]:
    out: Counter[str] = Counter()
    for v in values:
        e = json.loads(v)
        out[
            json.dumps(
                {
                    "id": e["id"],
                    "word": e["word"],
                    "upper": e["word"].upper(),
                    "length": len(e["word"]),
                },
                sort_keys=True,
            )
        ] += 1
    return out


def smoke(stack: StackState) -> int:
    bs = stack.bootstrap_servers
    kafka_io.create_topics(bs, {IN_TOPIC: 2, OUT_TOPIC: 2}, recreate=True)
    values = events(EVENTS)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"producing {EVENTS} events to {IN_TOPIC}", total=EVENTS)
        kafka_io.produce(
            bs,
            IN_TOPIC,
            ((None, v) for v in values),
            on_sent=lambda n: bar.update(task, completed=n),
        )
    console.print(f"Produced {EVENTS} events to [bold]{IN_TOPIC}[/bold].")
    if not _smoke_job_finishes(stack):
        return 1
    with console.status(f"reading {OUT_TOPIC}…"):
        got = Counter(
            json.dumps(json.loads(r.value), sort_keys=True)
            for r in kafka_io.read_all(bs, OUT_TOPIC, expected=EVENTS, timeout=120)
        )
    want = expected(values)
    if got != want:
        missing, extra = sum((want - got).values()), sum((got - want).values())
        console.print(
            f"[red]Output differs from the expected: {missing} missing, {extra} extra.[/red]"
        )
        return 1
    console.print(
        f"[green]Verified:[/green] {sum(got.values())} records in {OUT_TOPIC}, "
        "each exactly the expected transform of its event."
    )
    return 0


def _smoke_job_finishes(stack: StackState) -> bool:
    """Submit jobs.smoke over the bounded input and wait until it ends; say how if not FINISHED."""
    args = ["--bootstrap-servers", stack.bootstrap_servers, "--input-topic", IN_TOPIC,
            "--output-topic", OUT_TOPIC, "--group-id", f"smoke-demo-{int(time.time())}",
            "--bounded"]  # fmt: skip
    with FlinkClient(stack.flink_url) as flink:
        job_id = pyjobs.submit(flink, "jobs.smoke", args)
        console.print(f"Submitted jobs.smoke as Flink job {job_id}.")
        with console.status("running the smoke job…"):
            state = "CREATED"
            deadline = time.monotonic() + 300
            while state not in TERMINAL_STATES and time.monotonic() < deadline:
                time.sleep(1)
                state = flink.job(job_id)["state"]
    if state != "FINISHED":
        console.print(
            f"[red]The smoke job ended {state}[/red]; see {stack.flink_url}/#/job/"
            f"completed/{job_id}/exceptions"
        )
    return state == "FINISHED"


REFERENCE_JOBS = {
    "attribution": "attributed-clicks",
    "sessions": "sessions",
    "ledger": "stock-levels",
}
SIDE_TOPICS = ("late-events", "dead-letter")
SPECS = paths.PROJECT_ROOT / "jobs" / "specs"


def _wait_store(
    store: SqliteStore, names: list[str], done: Callable[[FlinkJob | None], bool], what: str
) -> None:
    deadline = time.monotonic() + 300
    with console.status(f"waiting for the controller: {what}…") as spinner:
        while True:
            jobs = {n: store.get(n) for n in names}
            pending = [n for n, j in jobs.items() if not done(j)]
            failed = [
                f"{n}: {j.status.error}"
                for n, j in jobs.items()
                if j is not None and j.status.lifecycle == Lifecycle.FAILED
            ]
            if failed:
                raise ControllerError("; ".join(failed))
            if not pending:
                return
            if time.monotonic() > deadline:
                raise ControllerError(
                    f"the controller did not {what} for {', '.join(pending)} within 300 s "
                    "(see `eddyline describe NAME` and `eddyline status`)"
                )
            spinner.update(f"waiting for the controller: {what} ({', '.join(pending)})…")
            time.sleep(0.5)


def _running(job: FlinkJob | None) -> bool:
    return job is not None and job.running_at()


def reference_jobs(stack: StackState, settings: StackSettings) -> int:
    if not any(c.kind == "controller" for c in stack.components):
        raise ControllerError(
            "this stack was started without the controller (by an older eddyline, or with "
            "EDDYLINE_CONTROLLER=false): restart it with `eddyline down && eddyline up`"
        )
    store = SqliteStore(settings.controller_db)
    names = list(REFERENCE_JOBS)
    _clear_earlier_demo(store, names, stack.flink_url)
    _produce_inputs(stack.bootstrap_servers)
    for name in names:
        spec_file = SPECS / f"{name}.yaml"
        applied = store.apply(spec.load_yaml(spec_file.read_text(), str(spec_file)))
        where = spec_file.relative_to(paths.PROJECT_ROOT)
        console.print(
            f"Submitted [bold]{name}[/bold] to the controller ({where}, "
            f"generation {applied.metadata.generation})."
        )
    _wait_store(store, names, _running, "start the reference jobs")
    with console.status("letting the jobs work through the events…"):
        time.sleep(40)
    jobs = {n: store.get(n) for n in names}
    console.print(_jobs_table(jobs, stack.flink_url))
    not_running = _not_running(jobs, stack.flink_url)
    empty = _print_outputs(stack.bootstrap_servers)
    if not_running or empty:
        console.print(
            f"[red]Not all reference jobs work:[/red] not running: {not_running or '-'}; "
            f"no output in: {empty or '-'}"
        )
        return 1
    console.print("stock-levels is read with isolation.level=read_committed (exactly-once).")
    console.print(
        "Try: [bold].venv/bin/eddyline describe ledger[/bold], "
        "[bold]eddyline scale ledger --parallelism 2 --wait[/bold], "
        "[bold]eddyline suspend ledger --wait[/bold]."
    )
    return 0


def _clear_earlier_demo(store: SqliteStore, names: list[str], flink_url: str) -> None:
    """An earlier demo's jobs read the topics about to be recreated: delete them first."""
    earlier = [n for n in names if store.get(n) is not None]
    for name in earlier:
        store.request_delete(name, savepoint=False)
    if earlier:
        _wait_store(store, earlier, lambda j: j is None, "delete the previous demo's jobs")
    with FlinkClient(flink_url) as flink:
        for job in flink.jobs():  # jobs of a demo from before the controller ran them
            if job["name"] in REFERENCE_JOBS and job["state"] not in TERMINAL_STATES:
                flink.cancel(job["jid"])


def _produce_inputs(bs: str) -> None:
    """Fresh output topics, and the seeded generator's clickstream and orders as input."""
    outputs = list(REFERENCE_JOBS.values())
    kafka_io.create_topics(bs, dict.fromkeys([*outputs, *SIDE_TOPICS], 2), recreate=True)
    # 200 ms of event time per event: the data spans over an hour, so sessions close too.
    config = generator.GeneratorConfig(seed=1, events=20_000, mean_gap_ms=200)
    with Progress(console=console, transient=True) as bar:
        for name, messages, topics in (
            ("clickstream", generator.clickstream(config), {"views": "views", "clicks": "clicks"}),
            ("orders", generator.orders(config), {"orders": "orders"}),
        ):
            kafka_io.create_topics(bs, dict.fromkeys(topics.values(), 2), recreate=True)
            task = bar.add_task(f"producing {name}", total=len(messages))

            def advance(n: int, task: TaskID = task) -> None:
                bar.update(task, completed=n)

            loadgen.produce(bs, messages, topics, partitions=2, on_progress=advance)
    console.print(
        "Produced 20,000 clickstream events (views, clicks) and 20,000 orders, "
        "with out-of-order, late, duplicate, malformed and bot events."
    )


def _jobs_table(jobs: dict[str, FlinkJob | None], flink_url: str) -> Table:
    grid = table("FlinkJob", "lifecycle", "Flink job", "dashboard")
    for n, j in jobs.items():
        st = j.status if j else None
        grid.add_row(
            n,
            st.lifecycle.value if st else "gone",
            st.job_id or "-" if st else "-",
            f"{flink_url}/#/job/running/{st.job_id}/overview" if st and st.job_id else "-",
        )
    return grid


def _not_running(jobs: dict[str, FlinkJob | None], flink_url: str) -> list[str]:
    not_running = [n for n, j in jobs.items() if not _running(j)]
    with FlinkClient(flink_url) as flink:
        # Each reference job names its Flink pipeline after itself: the right program runs.
        wrong = [
            n
            for n, j in jobs.items()
            if j is not None and j.status.job_id and flink.job(j.status.job_id)["name"] != n
        ]
    return not_running + [f"{n} (another program runs under its id)" for n in wrong]


def _print_outputs(bs: str) -> list[str]:
    """A table of every output and side topic; the outputs that are empty."""
    grid = table("topic", "records", "example")
    outputs = list(REFERENCE_JOBS.values())
    empty = []
    for topic in [*outputs, *SIDE_TOPICS]:
        records = kafka_io.read_all(bs, topic, timeout=30, read_committed=True)
        example = records[0].value.decode(errors="replace")[:110] if records else "-"
        grid.add_row(topic, str(len(records)), escape(example))
        if not records and topic in outputs:
            empty.append(topic)
    console.print(grid)
    return empty


def run() -> int:
    settings = StackSettings()
    stack = control.load_running(settings.state_dir)
    code = smoke(stack) or reference_jobs(stack, settings)
    console.print(f"Flink dashboard: [bold]{stack.flink_url}[/bold]")
    console.print(
        "The stack and the jobs keep running; stop them with [bold].venv/bin/eddyline down[/bold]."
    )
    return code


def main() -> None:
    try:
        sys.exit(run())
    except EddylineError as e:
        print_error(e)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
