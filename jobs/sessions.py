"""Sessions: per-user session windows over views and clicks → one record per closed session.

A session is a user's run of events with gaps shorter than `--gap` (30 min); it closes when the
watermark passes its last event + gap. Output: user_id, session_start (first ts), session_end
(last ts + gap), events, views, clicks and pages (distinct normalised pages, a Python UDF).
Bots are dropped; late events go to `late-events`; malformed messages to `dead-letter`.

    python -m jobs.sessions --bootstrap-servers localhost:9092 --gap 30m
"""

from __future__ import annotations

import argparse
import sys

from jobs import clickstream, flags, runtime, sql

OUTPUT_COLUMNS = [
    ("user_id", "STRING"),
    ("session_start", "BIGINT"),
    ("session_end", "BIGINT"),
    ("events", "BIGINT"),
    ("views", "BIGINT"),
    ("clicks", "BIGINT"),
    ("pages", "BIGINT"),
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = clickstream.parser("sessions", __doc__, output_topic="sessions")
    p.add_argument("--gap", type=flags.duration, default="30m", metavar="DURATION")
    return p.parse_args(argv)


def statements(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(DDL, INSERTs) of the job: plain strings, so they can be read and tested."""
    # The page is normalised where the bot rule runs (one Python operator per stream).
    ddl = clickstream.input_ddl(args, pages=True)
    ddl.append("""CREATE TEMPORARY VIEW `activity` AS
SELECT `user_id`, `ts`, `rt`, `page_norm`, 1 AS `is_view`, 0 AS `is_click` FROM `views_ok`
UNION ALL
SELECT `user_id`, `ts`, `rt`, `page_norm`, 0 AS `is_view`, 1 AS `is_click` FROM `clicks_ok`""")
    ddl.append(sql.json_sink(args, "sessions_out", args.output_topic, OUTPUT_COLUMNS))
    gap = args.gap
    inserts = clickstream.side_inserts()
    inserts.append(f"""INSERT INTO `sessions_out`
SELECT `user_id`, `user_id`, MIN(`ts`), MAX(`ts`) + {gap},
       COUNT(*), CAST(SUM(`is_view`) AS BIGINT), CAST(SUM(`is_click`) AS BIGINT),
       COUNT(DISTINCT `page_norm`)
FROM TABLE(SESSION(TABLE `activity` PARTITION BY `user_id`, DESCRIPTOR(`rt`), {sql.interval(gap)}))
GROUP BY `user_id`, `window_start`, `window_end`""")
    return ddl, inserts


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runtime.run_sql_job("sessions", args, *statements(args))


if __name__ == "__main__":
    main()
