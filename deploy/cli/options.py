"""The options the job commands share, declared once, as option groups: `JobTarget` (where the
FlinkJobs are: the local store of --state-dir, or with --kube a cluster's custom resources) and
`Follow` (--wait, --timeout). A command takes a group as one parameter; `command` shows typer the
group's options in its place and hands the command the group built from them.

Help texts escape `[` as `\\[`: typer reads them as rich markup, where `[the default]` is a style
and would vanish from --help.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deploy.cli.common import EXIT_INVALID, StateDir, fail, settings_from
from deploy.controller.store import JobStore
from deploy.errors import EddylineError
from deploy.flink import entries
from deploy.local import wiring as local_wiring
from deploy.local.stack import state
from deploy.settings import StackSettings

if TYPE_CHECKING:  # the Kubernetes client takes a second and a half to import: only for --kube
    from deploy.kube.client import KubeTarget

JOB_DIRS_ENV = "EDDYLINE_JOB_DIRS"


class ListOutput(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"


class DescribeOutput(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


ListOutputOpt = Annotated[
    ListOutput,
    typer.Option(
        "--output", "-o", help="table for people, wide for more columns, json for scripts"
    ),
]
DescribeOutputOpt = Annotated[
    DescribeOutput, typer.Option("--output", "-o", help="table, or the whole FlinkJob")
]
Name = Annotated[str, typer.Argument(help="the FlinkJob's metadata.name")]
Wait = Annotated[
    bool, typer.Option("--wait/--no-wait", help="follow the controller until it has acted")
]
Timeout = Annotated[float, typer.Option(help="seconds --wait waits at most")]
Kube = Annotated[
    bool,
    typer.Option(
        "--kube",
        help="FlinkJob custom resources in a Kubernetes cluster, not the local store",
    ),
]
KubeNamespace = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="with --kube: the namespace \\[the context's; in a pod, its own; default]",
        show_default=False,
    ),
]
Kubeconfig = Annotated[
    Path | None,
    typer.Option(
        help="with --kube: the kubeconfig file \\[$KUBECONFIG, else ~/.kube/config]",
        show_default=False,
    ),
]
KubeContext = Annotated[
    str | None,
    typer.Option(
        "--context",
        help="with --kube: the kubeconfig context \\[its current one]",
        show_default=False,
    ),
]


def allowed_dirs(given: list[Path] | None = None) -> list[Path]:
    """Folders .py job entries may come from: --job-dir, else EDDYLINE_JOB_DIRS, else jobs/."""
    if given:
        return given
    env = os.environ.get(JOB_DIRS_ENV)
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return entries.default_allowed()


def kube_target(
    kube: bool,
    namespace: str | None = None,
    kubeconfig: Path | None = None,
    context: str | None = None,
    in_cluster: bool = False,
) -> KubeTarget | None:
    """The cluster --kube names; None without --kube, where a cluster option is a mistake."""
    if not kube:
        flags = (
            ("--namespace", namespace),
            ("--kubeconfig", kubeconfig),
            ("--context", context),
            ("--in-cluster", in_cluster),
        )
        given = [flag for flag, value in flags if value]
        if given:
            raise fail(f"{', '.join(given)} only go with --kube", EXIT_INVALID)
        return None
    from deploy.kube.client import KubeTarget  # noqa: PLC0415 - see TYPE_CHECKING above

    return KubeTarget(
        namespace=namespace,
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=True if in_cluster else None,
    )


@dataclass(frozen=True)
class JobTarget:
    """Where the FlinkJobs are: the local SQLite store in the state folder, or with --kube the
    FlinkJob custom resources of a cluster's namespace."""

    state_dir: StateDir = None
    kube: Kube = False
    namespace: KubeNamespace = None
    kubeconfig: Kubeconfig = None
    context: KubeContext = None

    @functools.cached_property
    def cluster(self) -> KubeTarget | None:
        return kube_target(self.kube, self.namespace, self.kubeconfig, self.context)

    @functools.cached_property
    def settings(self) -> StackSettings:
        return settings_from(state_dir=self.state_dir)

    @functools.cached_property
    def store(self) -> JobStore:
        cluster = self.cluster  # first: a cluster option without --kube opens nothing
        if cluster is None:
            return local_wiring.store(self.settings)
        from deploy.kube import wiring as kube_wiring  # noqa: PLC0415 - see TYPE_CHECKING above

        return kube_wiring.store(cluster)

    def hint(self, name: str) -> str:
        """Where to look when the controller did not do what was asked."""
        if self.cluster is None:
            return f"controller log: {local_wiring.controller_log(self.settings)}"
        return f"`kubectl describe flinkjob {name}` shows its events; the controller logs the rest"

    def flink_url(self) -> str:
        """The Flink Web UI to link jobs to: the local stack's; none on Kubernetes, where the
        UI is reached through `eddyline dashboard --kube`."""
        if self.cluster is not None:
            return ""
        current = state.load(self.settings.state_dir)
        return current.flink_url if current is not None else self.settings.flink_url


@dataclass(frozen=True)
class Follow:
    """Whether a command follows the controller until it has acted, and for how long."""

    wait: Wait = False
    timeout: Timeout = 300.0


GROUPS: tuple[type, ...] = (JobTarget, Follow)


def command(run: Callable[..., None]) -> Callable[..., None]:
    """A typer command that may take option groups (`GROUPS`) and reports an EddylineError as
    one `error:` line and exit 1. Typer reads the signature given here: each group parameter is
    replaced by the group's options; the command is called with the group built from them."""
    signature = inspect.signature(run, eval_str=True)
    shown: list[inspect.Parameter] = []
    groups: dict[str, type] = {}
    for param in signature.parameters.values():
        if param.annotation in GROUPS:
            groups[param.name] = param.annotation
            shown += _options(param.annotation)
        else:  # keyword-only: a group's options with defaults may precede a required option
            shown.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    names = [p.name for p in shown]
    assert len(names) == len(set(names)), f"{run.__name__}: an option is declared twice"

    @functools.wraps(run)
    def call(**values: Any) -> None:
        for name, group in groups.items():
            values[name] = group(**{f.name: values.pop(f.name) for f in dataclasses.fields(group)})
        try:
            run(**values)
        except EddylineError as e:
            raise fail(e) from None

    call.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p in shown} | {"return": None}
    return call


def _options(group: type) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(group, include_extras=True)
    return [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name], default=f.default
        )
        for f in dataclasses.fields(group)
    ]
