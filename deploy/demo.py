"""`make demo`: run the smoke job on the running local stack and check its output.

Produces events to Kafka, submits `jobs.smoke` to the Flink session cluster through the REST
API (as the controller will), waits for it to finish, reads the output back and verifies it
record by record. Exit code 0 only when the output is exactly what the events call for.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

from rich.console import Console
from rich.progress import Progress

from deploy import kafka_io, pyjobs
from deploy.errors import EddylineError
from deploy.flink_rest import TERMINAL_STATES, FlinkClient
from deploy.settings import StackSettings
from deploy.stack import control

EVENTS = 5_000
IN_TOPIC, OUT_TOPIC = "smoke-in", "smoke-out"
console = Console()


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


def run() -> int:
    settings = StackSettings()
    stack = control.load_running(settings.state_dir)
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

    with FlinkClient(stack.flink_url) as flink:
        job_id = pyjobs.submit(
            flink,
            "jobs.smoke",
            [
                "--bootstrap-servers",
                bs,
                "--input-topic",
                IN_TOPIC,
                "--output-topic",
                OUT_TOPIC,
                "--group-id",
                f"smoke-demo-{int(time.time())}",
                "--bounded",
            ],
        )
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
    console.print(f"Flink dashboard: [bold]{stack.flink_url}[/bold]  (job {job_id})")
    console.print("The stack keeps running; stop it with [bold].venv/bin/eddyline down[/bold].")
    return 0


def main() -> None:
    try:
        sys.exit(run())
    except EddylineError as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
