"""What every `eddyline` command shares: consoles, output formats and option types."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from deploy.errors import EddylineError
from deploy.settings import StackSettings

console = Console()
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
