"""Smoke job: proves Kafka → PyFlink (a Python function in a Python worker) → Kafka works.

Reads JSON events `{"id": int, "word": str}` and writes `{"id", "word", "upper", "length"}`.
A message that is not such an event becomes `{"error": ..., "raw": ...}` rather than failing
the job. `--bounded` stops at the offsets that were latest at start, so a test can wait for it.
"""

from __future__ import annotations

import argparse
import json
import sys

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import StreamExecutionEnvironment

from jobs import connectors, runtime


def transform(raw: str) -> str:
    """One input message to one output message (pure: unit-tested without Flink)."""
    try:
        event = json.loads(raw)
        ident, word = event["id"], event["word"]
        if not isinstance(ident, int) or not isinstance(word, str):
            raise TypeError("id must be an int and word a string")
    except (ValueError, KeyError, TypeError) as e:
        return json.dumps({"error": f"{type(e).__name__}: {e}", "raw": raw})
    return json.dumps({"id": ident, "word": word, "upper": word.upper(), "length": len(word)})


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m jobs.smoke", description=__doc__)
    p.add_argument("--bootstrap-servers", default="localhost:9092")
    p.add_argument("--input-topic", default="smoke-in")
    p.add_argument("--output-topic", default="smoke-out")
    p.add_argument("--group-id", default="smoke")
    p.add_argument("--starting-offsets", default="earliest", choices=connectors.STARTING_OFFSETS)
    p.add_argument("--parallelism", type=int, default=None, help="default: the configured one")
    p.add_argument("--bounded", action="store_true", help="stop at the offsets latest at start")
    return p.parse_args(argv)


def build(env: StreamExecutionEnvironment, args: argparse.Namespace) -> None:
    if args.parallelism is not None:
        env.set_parallelism(args.parallelism)
    source = connectors.string_source(
        args.bootstrap_servers,
        [args.input_topic],
        args.group_id,
        args.starting_offsets,
        args.bounded,
    )
    (
        env.from_source(source, WatermarkStrategy.no_watermarks(), "kafka: " + args.input_topic)
        .map(transform, output_type=Types.STRING())
        .name("transform")
        .sink_to(connectors.string_sink(args.bootstrap_servers, args.output_topic))
        .name("kafka: " + args.output_topic)
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    env = runtime.python_env()
    build(env, args)
    # Embedded (`python -m`): blocks until the job ends. Submitted to a session cluster through
    # the REST API, the driver runs detached and this returns once the job is submitted.
    env.execute("smoke")


if __name__ == "__main__":
    main()
