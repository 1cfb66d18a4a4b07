"""Facts about Flink that pure code needs without a client: the job states after which a job
runs no more, and the entry class of every PyFlink job."""

from __future__ import annotations

PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "CANCELED"})
