"""A stateful job for `eddyline diff`'s tests: counts the messages seen per value (keyed state)
and writes `value:count`. The counting operator's uid is a flag, so a test can change it as a
code change renaming an operator would, and see its state left without a home. Started as a
file entry (`-py`), from an allowed folder the tests add."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from jobs import connectors, runtime


class Count(KeyedProcessFunction):  # type: ignore[misc]  # pyflink is untyped
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, value: str, ctx: Any) -> Iterator[str]:
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        yield f"{value}:{n}"


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="counter.py")
    p.add_argument("--bootstrap-servers", required=True)
    p.add_argument("--input-topic", required=True)
    p.add_argument("--output-topic", required=True)
    p.add_argument("--group-id", required=True)
    p.add_argument("--uid", default="count", help="the counting operator's uid")
    args = p.parse_args(argv)
    env = runtime.python_env()
    source = connectors.string_source(
        args.bootstrap_servers, [args.input_topic], args.group_id, "earliest"
    )
    (
        env.from_source(source, WatermarkStrategy.no_watermarks(), "in")
        .uid("in")
        .key_by(lambda v: v, key_type=Types.STRING())
        .process(Count(), output_type=Types.STRING())
        .uid(args.uid)
        .sink_to(connectors.string_sink(args.bootstrap_servers, args.output_topic))
        .uid("out")
    )
    env.execute("counter")


if __name__ == "__main__":
    main(sys.argv[1:])
