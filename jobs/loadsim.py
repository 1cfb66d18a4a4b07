"""Load simulation: every record costs a fixed time in a Python function, as a call to a slow
external service would, then goes on unchanged.

The autoscaler's benchmark and tests drive this job: its capacity per subtask is known
(1 / cost records/s) and grows with parallelism even on a machine with two cores, because the
cost is waiting, not computing. (The reference jobs are CPU-bound there: more subtasks of the
ledger only share the same two cores.) The Flink Kubernetes Operator's autoscaler is exercised
the same way, with a load-simulation pipeline.

    python -m jobs.loadsim --input-topic load-in --output-topic load-out --record-cost 4ms
"""

from __future__ import annotations

import argparse
import sys
import time

from pyflink.common import Types, WatermarkStrategy

from jobs import connectors, flags, runtime


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = flags.parser("loadsim", __doc__, output_topic="load-out")
    p.add_argument("--input-topic", default="load-in")
    p.add_argument(
        "--record-cost",
        type=flags.duration,
        default="4ms",
        metavar="DURATION",
        help="time each record takes (a subtask handles at most 1 / cost records/s)",
    )
    p.add_argument("--bounded", action="store_true", help="stop at the offsets latest at start")
    return p.parse_args(argv)


class Cost:
    """Pass a record on after `cost_ms`. Sleeps are coarse (≥ ~0.1 ms late each), so the time
    owed is tracked and slept in steps of at least a millisecond: the rate holds on average."""

    def __init__(self, cost_ms: int) -> None:
        self.cost_s = cost_ms / 1000
        self._owed = 0.0

    def __call__(self, record: str) -> str:
        self._owed += self.cost_s
        if self._owed >= 0.001:
            started = time.perf_counter()
            time.sleep(self._owed)
            self._owed -= time.perf_counter() - started
        return record


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    env = runtime.stream_env(args)
    source = connectors.string_source(
        args.bootstrap_servers, [args.input_topic], args.group_id, args.starting_offsets,
        args.bounded,
    )  # fmt: skip
    (
        env.from_source(source, WatermarkStrategy.no_watermarks(), "kafka: " + args.input_topic)
        .uid("source")
        .map(Cost(args.record_cost), output_type=Types.STRING())
        .name("cost")
        .uid("cost")
        .sink_to(connectors.string_sink(args.bootstrap_servers, args.output_topic))
        .name("kafka: " + args.output_topic)
        .uid("sink")
    )
    runtime.execute(env, "loadsim")


if __name__ == "__main__":
    main()
