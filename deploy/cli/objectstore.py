"""`python -m deploy.cli.objectstore run`: the local S3-compatible server
(deploy/local/objectstore.py) served until Ctrl-C, for job state outside the local stack (e.g.
the real node's cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from deploy.cli.common import Output, OutputOpt, console, err, fail
from deploy.errors import EddylineError
from deploy.local.objectstore import ObjectStoreServer, ensure_bucket
from deploy.settings import default_state_dir

app = typer.Typer(
    help="A local S3-compatible server (versitygw, POSIX backend) for checkpoints and savepoints.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """A local S3-compatible server (versitygw, POSIX backend) for checkpoints and savepoints."""


# Help texts escape `[` as `\\[`: typer reads them as rich markup, where `[default: …]` is a
# style and would vanish from --help.
@app.command()
def run(
    host: Annotated[str, typer.Option(help="address to bind and to advertise")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="port \\[default: a free one]")] = None,
    root: Annotated[
        Path | None,
        typer.Option(
            help="folder to serve; each sub-folder is a bucket "
            "\\[default: ~/.local/state/eddyline/objectstore/data]",
            show_default=False,
        ),
    ] = None,
    bucket: Annotated[
        list[str] | None, typer.Option(help="bucket to create (repeatable)", show_default=False)
    ] = None,
    request_log: Annotated[bool, typer.Option(help="log every request")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Serve until Ctrl-C; prints the endpoint and this run's credentials first."""
    # Imported before anything is printed: a Ctrl-C right after the credentials must find the
    # handlers installed, not an import under way.
    from deploy.controller.loop import stop_on_signals  # noqa: PLC0415 - only this command

    base = default_state_dir() / "objectstore"
    server = ObjectStoreServer(
        root if root is not None else base / "data",
        host=host,
        port=port,
        log=base / "versitygw.log" if root is None else None,
        request_log=request_log,
    )
    try:
        store = server.start()
        for name in bucket or []:
            ensure_bucket(store, name)
    except EddylineError as e:
        server.stop()
        raise fail(e) from None
    if output is Output.json:
        typer.echo(
            json.dumps({**store.to_dict(), "root": str(server.root), "log": str(server.log)})
        )
    else:
        console.print(f"S3 endpoint  {store.endpoint}  (region {store.region}, path-style)")
        console.print(f"access key   {store.access_key}")
        console.print(f"secret key   {store.secret_key}")
        console.print(f"data         {server.root}")
        console.print(f"log          {server.log}")
        console.print("Serving until Ctrl-C.")
    try:
        with stop_on_signals() as stop:  # SIGTERM too, and SIGINT even in a background job
            while server.running() and not stop.wait(0.5):
                pass
    finally:
        code = server.exit_code()
        server.stop()
    if code is not None:
        err.print(f"[red]error:[/red] versitygw exited with {code}; log: {server.log}")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
