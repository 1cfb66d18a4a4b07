"""`python -m deploy.localkube up|down|status`: what `make cluster-up` / `cluster-down` run."""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from deploy.errors import ClusterError
from deploy.localkube import node
from deploy.localkube.layout import Layout
from deploy.paths import cache_root

console = Console(stderr=True)
app = typer.Typer(
    help="A real single-node Kubernetes on this machine (kubelet + containerd), for the chart.",
    no_args_is_help=True,
    add_completion=False,
)


def image_ref() -> str:
    return f"eddyline:{version('eddyline')}"


def image_archive() -> Path:
    """Where `make image` saves the project's image (scripts/build-image.sh)."""
    return cache_root() / "image" / f"eddyline-{version('eddyline')}.tar"


JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _fail(e: ClusterError) -> typer.Exit:
    console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


@app.command()
def up(as_json: JsonOpt = False) -> None:
    """Start the cluster (nothing to do if it runs) and load the project's image into the node."""
    layout = Layout.default()
    try:
        with console.status("starting the local cluster…") as spinner:
            result = node.up(
                layout, {image_ref(): image_archive()}, lambda m: spinner.update(f"{m}…")
            )
    except ClusterError as e:
        raise _fail(e) from None
    if as_json:
        typer.echo(result.model_dump_json())
        return
    if result.already_running:
        console.print("The local cluster is already running; nothing to start.")
    else:
        console.print("[green]The local cluster is up.[/green]")
    for ref in result.images_loaded:
        console.print(f"  loaded {ref} into the node")
    if not image_archive().exists():
        console.print(f"  no image archive at {image_archive()}: run `make image` to build one")
    console.print(f"  API server: {result.server}")
    console.print(f"  export KUBECONFIG={result.kubeconfig}")
    console.print("  Stop it with: make cluster-down")


@app.command()
def down(as_json: JsonOpt = False) -> None:
    """Stop the cluster and put the machine back as it was (processes, mounts, links, rules,
    cgroups, kernel settings)."""
    layout = Layout.default()
    try:
        with console.status("stopping the local cluster…") as spinner:
            result = node.down(layout, lambda m: spinner.update(f"{m}…"))
    except ClusterError as e:
        raise _fail(e) from None
    if as_json:
        typer.echo(result.model_dump_json())
        return
    if result.cleared_leftovers:
        console.print("The local cluster was not running; removed what an earlier run left.")
        return
    if not result.was_running:
        console.print("The local cluster was not running; nothing to stop.")
        return
    console.print(f"Stopped: {', '.join(result.stopped) or 'nothing was still running'}.")
    if result.sysctls_restored:
        console.print(f"Kernel settings put back: {', '.join(result.sysctls_restored)}.")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Whether the cluster runs, and each component. Exit code 0 only when it all runs."""
    result = node.status(Layout.default())
    if as_json:
        typer.echo(result.model_dump_json())
    else:
        console.print("running" if result.running else "not running")
        for name, alive in result.components.items():
            console.print(f"  {name}: {'running' if alive else 'stopped'}")
        for line in result.pod_problems:
            console.print(f"  {line}", highlight=False, soft_wrap=True)
    if not result.running:
        sys.exit(1)


if __name__ == "__main__":
    app()
