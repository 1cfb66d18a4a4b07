"""A job for the controller's tests: upper-cases each message, and fails on the message `boom`
while the file named by --marker exists (so a test decides when it fails and when it recovers).
It is started as a file entry (`-py`), from an allowed folder the tests add."""

from __future__ import annotations

import argparse
import os
import sys

from pyflink.common import Types, WatermarkStrategy

from jobs import connectors, runtime


def transform(value: str, marker: str) -> str:
    if value == "boom" and os.path.exists(marker):
        raise RuntimeError(f"poisoned message 'boom' while {marker} exists")
    return value.upper()


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="flaky.py")
    p.add_argument("--bootstrap-servers", required=True)
    p.add_argument("--input-topic", required=True)
    p.add_argument("--output-topic", required=True)
    p.add_argument("--group-id", required=True)
    p.add_argument("--marker", required=True)
    args = p.parse_args(argv)
    env = runtime.python_env()
    marker = args.marker
    source = connectors.string_source(
        args.bootstrap_servers, [args.input_topic], args.group_id, "earliest"
    )
    (
        env.from_source(source, WatermarkStrategy.no_watermarks(), "in")
        .map(lambda v: transform(v, marker), output_type=Types.STRING())
        .sink_to(connectors.string_sink(args.bootstrap_servers, args.output_topic))
    )
    env.execute("flaky")


if __name__ == "__main__":
    main(sys.argv[1:])
