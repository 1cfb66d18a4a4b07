"""What attribution and sessions share: reading views and clicks, and the three side routes.

For each stream: a raw Kafka table, a checked view (fields, `error`, `late`), a routed view (and
`bot`) and `<stream>_ok`,
the valid, on-time, human events the job's logic consumes. Malformed messages go to dead-letter
and late events to late-events from here, so both jobs route them identically.
"""

from __future__ import annotations

import argparse

from jobs import flags, sql

STREAMS = ("views", "clicks")


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--views-topic", default="views")
    p.add_argument("--clicks-topic", default="clicks")
    p.add_argument(
        "--functions",
        choices=sql.FUNCTIONS,
        default="pandas",
        help="how the bot and page rules run: vectorised pandas UDFs (default: measured faster), "
        "row-at-a-time Python UDFs, or built-in SQL functions (the benchmark's pure-SQL "
        "baseline, whose IS JSON also accepts trailing content after an object)",
    )
    p.add_argument(
        "--bounded",
        action="store_true",
        help="stop at the offsets latest at start (tests and benchmarks)",
    )


def parser(name: str, description: str | None, output_topic: str) -> argparse.ArgumentParser:
    p = flags.parser(name, description, output_topic)
    add_flags(p)
    return p


def input_ddl(args: argparse.Namespace, columns: dict[str, str] | None = None) -> list[str]:
    """Sources, checked views, `views_ok`/`clicks_ok` and the dead-letter and late sinks.

    `columns` (name: SQL expression over the checked fields) are added to the routed view: a
    Python UDF there runs in the same Python operator as the bot rule, once per message, rather
    than in an operator (and a Java ↔ Python crossing) of its own further down."""
    extra = "".join(f", {expr} AS `{name}`" for name, expr in (columns or {}).items())
    ddl = []
    for stream in STREAMS:
        topic = getattr(args, f"{stream}_topic")
        ddl.append(sql.source_table(f"{stream}_src", topic, args, bounded=args.bounded))
        ddl.append(
            sql.checked_view(
                f"{stream}_checked", f"{stream}_src", sql.CLICKSTREAM_FIELDS,
                functions=args.functions,
            )
        )  # fmt: skip
        # The bot flag is a column of the view every route reads, not a term of the valid
        # route's filter: the planner runs Python UDFs on every row ahead of the filter they
        # are in, after simplifying their arguments as if the filter's other terms held (the
        # count flag became `NOT late`, so malformed bots were counted). As a column of the
        # shared view it is computed once per message, with an honest flag.
        on_route = "`error` IS NULL AND NOT `late`"
        bot = sql.bot_check("`user_agent`", args.functions, counted=on_route)
        ddl.append(f"""CREATE TEMPORARY VIEW `{stream}_routed` AS
SELECT *, {bot} AS `bot`{extra} FROM `{stream}_checked`""")
        ddl.append(f"""CREATE TEMPORARY VIEW `{stream}_ok` AS
SELECT * FROM `{stream}_routed`
WHERE {on_route} AND NOT `bot`""")
    ddl.append(sql.dead_letter_sink(args))
    ddl.append(sql.keyed_raw_sink(args, "late_events", args.late_topic))
    return ddl


def side_inserts() -> list[str]:
    """Dead letters and late events of both streams."""
    # From `<stream>_routed`, like the valid route, so the three routes share one plan of it.
    inserts = [sql.dead_letter_insert(f"{s}_routed") for s in STREAMS]
    inserts += [sql.late_insert(f"{s}_routed", "user_id") for s in STREAMS]
    return inserts
