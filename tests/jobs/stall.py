"""A job for the data-health tests: passes each message through, with event time from the Kafka
record's timestamp (so its watermark follows the input), and stalls — its map waits — while the
file named by --marker exists: the watermark stops, the consumer lag grows, and both move again
once the file is gone. With --dead-letter-topic, records starting with "bad" go there instead of
to the output, as the reference jobs route malformed input. Started as a file entry (`-py`),
from an allowed folder the tests add."""

from __future__ import annotations

import argparse
import os
import sys
import time

from pyflink.common import Types, WatermarkStrategy

from jobs import connectors, runtime


def wait_while(marker: str, value: str) -> str:
    while os.path.exists(marker):
        time.sleep(0.1)
    return value


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="stall.py")
    p.add_argument("--bootstrap-servers", required=True)
    p.add_argument("--input-topic", required=True)
    p.add_argument("--output-topic", required=True)
    p.add_argument("--group-id", required=True)
    p.add_argument("--marker", required=True)
    p.add_argument("--dead-letter-topic")
    args = p.parse_args(argv)
    env = runtime.python_env()
    marker = args.marker
    source = connectors.string_source(
        args.bootstrap_servers, [args.input_topic], args.group_id, "earliest"
    )
    passed = (
        env.from_source(source, WatermarkStrategy.for_monotonous_timestamps(), "in")
        # Keyed: the map runs in a vertex of its own that the source feeds, the one whose
        # input watermark the controller reads.
        .key_by(lambda v: v, key_type=Types.STRING())
        .map(lambda v: wait_while(marker, v), output_type=Types.STRING())
    )
    good = passed
    if args.dead_letter_topic:
        good = passed.filter(lambda v: not v.startswith("bad"))
        bad = passed.filter(lambda v: v.startswith("bad"))
        bad.sink_to(connectors.string_sink(args.bootstrap_servers, args.dead_letter_topic))
    good.sink_to(connectors.string_sink(args.bootstrap_servers, args.output_topic))
    env.execute("stall")


if __name__ == "__main__":
    main(sys.argv[1:])
