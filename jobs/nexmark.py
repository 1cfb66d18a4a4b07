"""Nexmark-style q8 and q11 on the clickstream topics, in Flink SQL only (no Python UDFs).

The benchmark's pure-SQL reference points, for comparison with the published Nexmark figures
(bench/throughput.py). The auction model is mapped onto views and clicks:

  q8  "monitor new users" (persons who opened an auction in the tumbling window in which they
      registered) → users with both a view and a click in the same `--window` (10 s) tumbling
      event-time window. As in Nexmark's q8 SQL: each side is made distinct per user and
      window, then the two are joined on user and window. Output: user_id, window_start,
      window_end (epoch ms).
  q11 "user sessions" (bids per bidder session, 10 s gap) → events (views UNION ALL clicks)
      per user_id and session window with a `--gap` (10 s) gap. Output: user_id,
      session_start (first ts), session_end (last ts + gap), events.

Unlike the reference jobs this baseline has no dead-letter or late route and no bot rule: a
message whose `user_id` or `ts` does not parse (JSON_VALUE / the integer check give NULL) is
dropped (`WHERE user_id IS NOT NULL AND ts IS NOT NULL`); a `user_id` that is another JSON
scalar (a number, true) counts as its text; late events are dropped by the window operators;
duplicates count (q11) or collapse (q8) as they are; bots are users like any other.
--late-topic, --dead-letter-topic and --functions are accepted, as by every clickstream job,
and ignored.

    python -m jobs.nexmark --query q8 --bootstrap-servers localhost:9092
"""

from __future__ import annotations

import argparse
import sys

from jobs import clickstream, flags, runtime, sql

QUERIES = ("q8", "q11")
OUTPUT_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "q8": [("user_id", "STRING"), ("window_start", "BIGINT"), ("window_end", "BIGINT")],
    "q11": [
        ("user_id", "STRING"),
        ("session_start", "BIGINT"),
        ("session_end", "BIGINT"),
        ("events", "BIGINT"),
    ],
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = clickstream.parser("nexmark", __doc__, output_topic="")
    p.add_argument("--query", choices=QUERIES, required=True)
    p.add_argument("--window", type=flags.duration, default="10s", metavar="DURATION", help="q8")
    p.add_argument("--gap", type=flags.duration, default="10s", metavar="DURATION", help="q11")
    p.set_defaults(output_topic=None)
    args = p.parse_args(argv)
    if not args.output_topic:
        args.output_topic = f"nexmark-{args.query}"
    return args


def input_ddl(args: argparse.Namespace) -> list[str]:
    """The raw sources (shared with the other jobs) and `<stream>_in`: user_id, ts, rt."""
    ddl = []
    for stream in clickstream.STREAMS:
        topic = getattr(args, f"{stream}_topic")
        ddl.append(sql.source_table(f"{stream}_src", topic, args, bounded=args.bounded))
        ddl.append(f"""CREATE TEMPORARY VIEW `{stream}_in` AS
SELECT `user_id`, `ts`, `rt` FROM (
  SELECT {sql.string_value("user_id")} AS `user_id`, `ts`, `rt` FROM `{stream}_src`
)
WHERE `user_id` IS NOT NULL AND `ts` IS NOT NULL""")
    return ddl


def q8(args: argparse.Namespace) -> str:
    w = args.window
    win = sql.interval(w)

    def distinct(stream: str, first_ts: str = "") -> str:
        return f"""SELECT `user_id`, `window_start`, `window_end`{first_ts}
  FROM TABLE(TUMBLE(TABLE `{stream}_in`, DESCRIPTOR(`rt`), {win}))
  GROUP BY `user_id`, `window_start`, `window_end`"""

    # Windows are aligned to the epoch in UTC (runtime.table_env), so any ts of the window gives
    # its bounds in epoch ms, as attribution computes them.
    return f"""INSERT INTO `nexmark_q8`
SELECT V.`user_id`, V.`user_id`, V.`first_ts` - MOD(V.`first_ts`, {w}),
       V.`first_ts` - MOD(V.`first_ts`, {w}) + {w}
FROM ({distinct("views", ", MIN(`ts`) AS `first_ts`")}) AS V
JOIN ({distinct("clicks")}) AS C
  ON V.`user_id` = C.`user_id`
 AND V.`window_start` = C.`window_start` AND V.`window_end` = C.`window_end`"""


def q11(args: argparse.Namespace) -> str:
    gap = args.gap
    return f"""INSERT INTO `nexmark_q11`
SELECT `user_id`, `user_id`, MIN(`ts`), MAX(`ts`) + {gap}, COUNT(*)
FROM TABLE(SESSION(TABLE `activity` PARTITION BY `user_id`, DESCRIPTOR(`rt`), {sql.interval(gap)}))
GROUP BY `user_id`, `window_start`, `window_end`"""


def statements(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(DDL, INSERTs) of the query: plain strings, so they can be read and tested."""
    ddl = input_ddl(args)
    if args.query == "q11":
        ddl.append("""CREATE TEMPORARY VIEW `activity` AS
SELECT `user_id`, `ts`, `rt` FROM `views_in`
UNION ALL
SELECT `user_id`, `ts`, `rt` FROM `clicks_in`""")
    name = f"nexmark_{args.query}"
    ddl.append(sql.json_sink(args, name, args.output_topic, OUTPUT_COLUMNS[args.query]))
    return ddl, [q8(args) if args.query == "q8" else q11(args)]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runtime.run_sql_job(f"nexmark-{args.query}", args, *statements(args))


if __name__ == "__main__":
    main()
