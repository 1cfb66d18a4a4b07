"""What every `eddyline` command shares: the consoles, tables that never cut a value, the output
formats, the state folder option, exit codes and the one way an error is reported."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploy.errors import EddylineError
from deploy.settings import StackSettings

EXIT_FAILED = 1  # the job, the stack or the controller failed, or --wait timed out
EXIT_INVALID = 2  # the spec or the request is wrong: fix it, do not retry

# Wider than any value, when stdout is a pipe or a file.
UNCUT_WIDTH = 100_000


def table_width(stdout_is_tty: bool, columns: str | None) -> int | None:
    """Output piped to a file, `less` or `grep` is never cut to rich's default 80 columns:
    full values, as kubectl prints them. A terminal (or an explicit COLUMNS) keeps its width."""
    return None if stdout_is_tty or columns else UNCUT_WIDTH


console = Console(width=table_width(sys.stdout.isatty(), os.environ.get("COLUMNS")))
err = Console(stderr=True)


def table(*headers: str, **options: Any) -> Table:
    """A table whose cells fold onto a second line in a narrow terminal instead of ending in
    "…": a job name, a path or a job id is only useful whole (copied into the next command).
    A column is never narrower than its header, which stays on one line."""
    grid = Table(**options)
    for header in headers:
        grid.add_column(header, overflow="fold", min_width=len(header))
    return grid


class Output(StrEnum):
    table = "table"
    json = "json"


StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Folder for logs, data, checkpoints \\[env EDDYLINE_STATE_DIR; default "
        "~/.local/state/eddyline]",
        show_default=False,
    ),
]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for scripts")
]


def settings_from(**overrides: Any) -> StackSettings:
    given = {k: v for k, v in overrides.items() if v is not None}
    return StackSettings(**given)


def print_error(error: EddylineError | str) -> None:
    """The one way an error reaches the user: an `error:` line on stderr (a spec's problems
    follow on their own lines), never a traceback; with the log to read next when the error
    carries one (a server that failed to start). The message is text: a `[…]` in it is shown,
    not taken for a style."""
    message = str(error)
    where = getattr(error, "log", None)
    if where is not None and str(where) not in message:
        message += f"; log: {where}"
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def fail(error: EddylineError | str, code: int = EXIT_FAILED) -> typer.Exit:
    """Report `error` (see print_error) and return the exit for the command to raise."""
    print_error(error)
    return typer.Exit(code)
