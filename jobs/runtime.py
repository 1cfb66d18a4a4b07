"""Execution environments for the jobs, the same embedded (`python -m`) and on a cluster."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment

from jobs import connectors
from udfs.flink import register_all

DEFAULT_CHECKPOINT_INTERVAL_MS = 10_000
BUNDLE_TIME = "python.fn-execution.bundle.time"
JOB_BUNDLE_TIME_MS = "100"


def python_env(settings: dict[str, str] | None = None) -> StreamExecutionEnvironment:
    """An environment whose Python workers run on this same interpreter, with the Kafka connector.

    Embedded, Flink would otherwise start `python` from PATH, which may lack pyflink; on the
    cluster this is already the configured interpreter, so it changes nothing there.
    """
    config = Configuration()
    config.set_string("python.executable", sys.executable)
    for key, value in (settings or {}).items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    connectors.ensure_kafka_connector(env)
    return env


def stream_env(
    args: argparse.Namespace, settings: dict[str, str] | None = None
) -> StreamExecutionEnvironment:
    """A streaming environment with the job's parallelism, checkpointing and extra settings."""
    settings = dict(settings or {})
    mode = getattr(args, "python_execution_mode", None)
    if mode is not None:
        settings["python.execution-mode"] = mode
    env = python_env(settings)
    configured = _configuration(env)
    own = getattr(args, "job_python_execution_mode", "process")
    if mode is None and "python.execution-mode" not in configured and own != "process":
        # Neither the flag nor the submission chose: the job's own mode (chosen by measurement).
        chosen = Configuration()
        chosen.set_string("python.execution-mode", own)
        env.configure(chosen)
    if args.parallelism is not None:
        env.set_parallelism(args.parallelism)
    elif "parallelism.default" not in configured:
        env.set_parallelism(1)
    if args.checkpoint_interval is not None:
        env.enable_checkpointing(args.checkpoint_interval)
    elif "execution.checkpointing.interval" not in configured:
        env.enable_checkpointing(DEFAULT_CHECKPOINT_INTERVAL_MS)
    # The mode (exactly-once unless configured otherwise) and timeout come from the configuration.
    return env


def _configuration(env: StreamExecutionEnvironment) -> dict[str, str]:
    """The environment's effective configuration: the cluster's plus what the submitter set."""
    conf = env._j_stream_execution_environment.getConfiguration()
    return {str(k): str(v) for k, v in conf.toMap().items()}


def table_env(
    args: argparse.Namespace, env: StreamExecutionEnvironment, name: str
) -> StreamTableEnvironment:
    t_env = StreamTableEnvironment.create(env)
    conf = t_env.get_config()
    configured = _configuration(env)  # one copy through py4j, not one per question
    if "pipeline.name" not in configured:  # the controller names it after the FlinkJob
        conf.set("pipeline.name", name)
    # Window bounds are computed from epoch milliseconds; UTC keeps them independent of the host.
    conf.set("table.local-time-zone", "UTC")
    conf.set("table.exec.source.idle-timeout", f"{args.idle_timeout} ms")
    # A view read by several INSERTs (the checked input feeds the valid, late and dead-letter
    # routes) is planned once and its operators shared, instead of once per route: the Python
    # JSON check then runs once per message, not four times (see bench.throughput).
    conf.set("table.optimizer.reuse-optimize-block-with-digest-enabled", "true")
    if args.parallelism is not None:
        conf.set("parallelism.default", str(args.parallelism))
    if BUNDLE_TIME not in configured:
        # A Python operator holds back the watermark until its bundle is finished, up to
        # bundle.time (Flink's default 1 s): a window fired up to a second late at each Python
        # step. At 100 ms, attribution's records arrive 0.9 s (p99) after their window could
        # close instead of 3.3 s (bench.latency), and the same run's throughput did not change
        # (11,107 events/s against 11,550 at 1 s; README's Benchmarks).
        conf.set(BUNDLE_TIME, JOB_BUNDLE_TIME_MS)
    mode = configured.get("python.execution-mode")
    if mode is not None:
        conf.set("python.execution-mode", mode)
    return t_env


def execute(env: StreamExecutionEnvironment, name: str) -> None:
    """Run a DataStream job, named `name` unless the submission named it (the controller names
    it after the FlinkJob through pipeline.name)."""
    if "pipeline.name" in _configuration(env):
        env.execute()
    else:
        env.execute(name)


def attached(env: StreamExecutionEnvironment) -> bool:
    """False when submitted detached (the REST API / controller): the job must not block then."""
    return _configuration(env).get("execution.attached") != "false"


def run_statements(env: StreamExecutionEnvironment, statement_set: Any) -> None:
    """Submit a StatementSet; wait for it only when embedded (waiting fails when detached)."""
    result = statement_set.execute()
    if attached(env):
        result.wait()


def run_sql_job(name: str, args: argparse.Namespace, ddl: list[str], inserts: list[str]) -> None:
    """Run a job written as SQL: its UDFs registered, `ddl` executed, `inserts` as one job."""
    env = stream_env(args)
    t_env = table_env(args, env, name)
    register_all(t_env)
    for statement in ddl:
        t_env.execute_sql(statement)
    statement_set = t_env.create_statement_set()
    for insert in inserts:
        statement_set.add_insert_sql(insert)
    run_statements(env, statement_set)
