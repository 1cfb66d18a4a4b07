"""Planning a SQL job without running it: its optimized execution plan, for tests that check what
the planner made of the job's statements (tests/unit/test_job_plans.py, test_nexmark.py)."""

from __future__ import annotations

import argparse
from typing import Any

from pyflink.table import StreamTableEnvironment

from jobs import runtime
from udfs.flink import register_all


def planned(
    args: argparse.Namespace, name: str, ddl: list[str], inserts: list[str]
) -> tuple[str, StreamTableEnvironment]:
    """The execution plan of `inserts` after `ddl` (UDFs registered), and the table environment
    they were planned in."""
    env = runtime.stream_env(args)
    t_env = runtime.table_env(args, env, name)
    register_all(t_env)
    for statement in ddl:
        t_env.execute_sql(statement)
    statement_set: Any = t_env.create_statement_set()
    for insert in inserts:
        statement_set.add_insert_sql(insert)
    text: str = statement_set.explain()
    return text[text.index("== Optimized Execution Plan ==") :], t_env
