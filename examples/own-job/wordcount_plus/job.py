"""Counts words by their slug: reads plain-text words from one topic and writes, for each, a
JSON line `{"word", "slug", "count", "version"}` to another, where `count` is how many words
with that slug were seen so far (keyed state, kept across savepoint upgrades).

`slugify` comes from python-slugify, a third-party package the cluster does not have: it is
imported here at the top (so the driver on the JobManager needs it) and used in a function the
Python workers run (so they need it too). `eddyline submit` ships it with the job.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor
from slugify import slugify

from jobs import connectors, runtime

VERSION = 1


def slug_of(word: str) -> tuple[str, str]:
    """(slug, word): "Crème Brûlée!" → ("creme-brulee", "Crème Brûlée!")."""
    return slugify(word) or "-", word


class CountSlugs(KeyedProcessFunction):  # type: ignore[misc]
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, value: tuple[str, str], ctx: Any) -> Iterator[str]:
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        slug, word = value
        yield json.dumps({"word": word, "slug": slug, "count": count, "version": VERSION})


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="wordcount_plus.job", description=__doc__)
    p.add_argument("--bootstrap-servers", default="localhost:9092")
    p.add_argument("--input-topic", default="words")
    p.add_argument("--output-topic", default="word-slugs")
    p.add_argument("--group-id", default="wordcount-plus")
    args = p.parse_args(argv)
    env = runtime.python_env()
    source = connectors.string_source(args.bootstrap_servers, [args.input_topic], args.group_id)
    (
        env.from_source(source, WatermarkStrategy.no_watermarks(), "words")
        .uid("words")
        .map(slug_of, output_type=Types.TUPLE([Types.STRING(), Types.STRING()]))
        .uid("slug")
        .key_by(lambda pair: pair[0], key_type=Types.STRING())
        .process(CountSlugs(), output_type=Types.STRING())
        .uid("count")
        .sink_to(connectors.string_sink(args.bootstrap_servers, args.output_topic))
        .uid("out")
    )
    runtime.execute(env, "wordcount-plus")


if __name__ == "__main__":
    main(sys.argv[1:])
