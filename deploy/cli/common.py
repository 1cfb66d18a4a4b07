"""What every `eddyline` command shares: consoles, output formats and option types."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from deploy.errors import EddylineError
from deploy.settings import StackSettings

# Wider than any value, when stdout is a pipe or a file.
UNCUT_WIDTH = 100_000


def table_width(stdout_is_tty: bool, columns: str | None) -> int | None:
    """Output piped to a file, `less` or `grep` is never cut to rich's default 80 columns:
    full values, as kubectl prints them. A terminal (or an explicit COLUMNS) keeps its width."""
    return None if stdout_is_tty or columns else UNCUT_WIDTH


console = Console(width=table_width(sys.stdout.isatty(), os.environ.get("COLUMNS")))
err = Console(stderr=True)


class Output(StrEnum):
    table = "table"
    json = "json"


StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Folder for logs, data, checkpoints [env EDDYLINE_STATE_DIR; default "
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


def fail(e: EddylineError) -> typer.Exit:
    err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
    return typer.Exit(1)
