"""`eddyline generate`: deterministic test events to Kafka (deploy/datagen makes and produces
them), so that a job has input with every kind of trouble the data contract names."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from deploy.cli.common import (
    EXIT_INVALID,
    Output,
    OutputOpt,
    StateDir,
    console,
    fail,
    settings_from,
)
from deploy.cli.options import command
from deploy.datagen import generator, loadgen
from deploy.local.stack import control, state


class Profile(StrEnum):
    clickstream = "clickstream"
    orders = "orders"


@command
def generate(
    profile: Annotated[
        Profile, typer.Option(help="which input topics to fill")
    ] = Profile.clickstream,
    events: Annotated[
        int, typer.Option(min=0, help="messages in total, all kinds included")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="same seed, same bytes")] = 0,
    rate: Annotated[
        float, typer.Option(min=0, help="messages per second; 0 = as fast as possible")
    ] = 0.0,
    partitions: Annotated[int, typer.Option(min=1, help="partitions of each topic created")] = 2,
    out_of_order: Annotated[
        float, typer.Option(help="fraction out of order within the bound")
    ] = 0.10,
    late: Annotated[float, typer.Option(help="fraction far behind the watermark")] = 0.01,
    duplicate: Annotated[float, typer.Option(help="fraction that are redeliveries")] = 0.01,
    malformed: Annotated[float, typer.Option(help="fraction that are broken messages")] = 0.01,
    bot: Annotated[float, typer.Option(help="fraction of bot traffic (clickstream)")] = 0.05,
    key_skew: Annotated[float, typer.Option(help="Zipf exponent of key choice; 0 = uniform")] = 1.2,
    views_topic: Annotated[str, typer.Option()] = "views",
    clicks_topic: Annotated[str, typer.Option()] = "clicks",
    orders_topic: Annotated[str, typer.Option()] = "orders",
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="default: the running local stack")
    ] = None,
    state_dir: StateDir = None,
    output: OutputOpt = Output.table,
) -> None:
    """Produce deterministic test events (with out-of-order, late, duplicate, malformed and bot
    events) to Kafka, creating the topics; views and clicks get the same partition count."""
    try:
        config = generator.GeneratorConfig(
            seed=seed,
            events=events,
            out_of_order=out_of_order,
            late=late,
            duplicate=duplicate,
            malformed=malformed,
            bot=bot if profile == Profile.clickstream else 0.0,
            key_skew=key_skew,
        )
    except ValueError as e:
        raise fail(str(e), EXIT_INVALID) from None
    if profile == Profile.clickstream:
        messages = generator.clickstream(config)
        topics = {"views": views_topic, "clicks": clicks_topic}
    else:
        messages = generator.orders(config)
        topics = {"orders": orders_topic}
    servers = _bootstrap(state_dir, bootstrap_servers)
    sent = _produce(servers, messages, topics, partitions, rate, quiet=output == Output.json)
    kinds = {
        k.removeprefix("kind."): n
        for k, n in generator.summary(messages).items()
        if k.startswith("kind.")
    }
    if output == Output.json:
        typer.echo(json.dumps({"bootstrap_servers": servers, "topics": sent, "kinds": kinds}))
        return
    console.print(
        f"Produced {len(messages)} messages to {servers}: "
        + ", ".join(f"{t} {n}" for t, n in sent.items())
    )
    console.print("  by kind: " + ", ".join(f"{k} {n}" for k, n in kinds.items() if n))


def _bootstrap(state_dir: Path | None, given: str | None) -> str:
    """The Kafka to use: the flag, else the running local stack, else the configured default."""
    if given:
        return given
    settings = settings_from(state_dir=state_dir)
    current = state.load(settings.state_dir)
    if current is not None and control.supervisor_running(settings.state_dir):
        state.register_stack(current)  # its broker may want TLS and SASL
        return current.bootstrap_servers
    return settings.bootstrap_servers


def _produce(
    servers: str,
    messages: list[generator.Message],
    topics: dict[str, str],
    partitions: int,
    rate: float,
    quiet: bool,
) -> dict[str, int]:
    """Produce, with a progress bar unless `quiet`; messages produced per topic."""
    try:
        if quiet:
            return loadgen.produce(servers, messages, topics, partitions, rate)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"producing to {', '.join(topics.values())}", total=len(messages))
            return loadgen.produce(
                servers,
                messages,
                topics,
                partitions,
                rate,
                on_progress=lambda n: bar.update(task, completed=n),
            )
    except Exception as e:  # confluent-kafka raises KafkaException and TimeoutError alike
        raise fail(f"producing to Kafka at {servers} failed: {e}") from None
