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
        default="python",
        help="how the checks and the bot and page rules run: one row-at-a-time Python call per "
        "message that parses, checks and applies the rules (default: measured fastest), the "
        "same parse and check with vectorised pandas UDFs for the rules, or built-in SQL "
        "functions only (the benchmark's pure-SQL baseline: a JSON parse per field and check, "
        "and an IS JSON that also accepts trailing content after an object)",
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


def input_ddl(args: argparse.Namespace, pages: bool = False) -> list[str]:
    """Sources, checked views, `views_ok`/`clicks_ok` and the dead-letter and late sinks.

    With `pages` the routed view has `page_norm`, the normalised page. With row-at-a-time Python
    functions (`--functions python`) the one Python call that parses and checks a message also
    applies the bot and page rules to it: one Java ↔ Python crossing per message. Pandas and
    built-in rules are columns of the routed view instead."""
    on_route = "`error` IS NULL AND NOT `late`"
    rules = "none"
    extra = ""
    if args.functions == "python":
        rules = "bots+pages" if pages else "bots"
    else:
        # The bot flag is a column of the view every route reads, not a term of the valid
        # route's filter: the planner runs Python UDFs on every row ahead of the filter they
        # are in, after simplifying their arguments as if the filter's other terms held (the
        # count flag became `NOT late`, so malformed bots were counted). As a column of the
        # shared view it is computed once per message, with an honest flag.
        bot = sql.bot_check("`user_agent`", args.functions, counted=on_route)
        extra = f", {bot} AS `bot`"
        if pages:
            extra += f", {sql.page_expression('`page`', args.functions)} AS `page_norm`"
    ddl = []
    for stream in STREAMS:
        topic = getattr(args, f"{stream}_topic")
        ddl.append(sql.source_table(f"{stream}_src", topic, args, bounded=args.bounded))
        ddl.append(
            sql.checked_view(
                f"{stream}_checked", f"{stream}_src", sql.CLICKSTREAM_FIELDS,
                functions=args.functions, rules=rules,
            )
        )  # fmt: skip
        ddl.append(f"""CREATE TEMPORARY VIEW `{stream}_routed` AS
SELECT *{extra} FROM `{stream}_checked`""")
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
