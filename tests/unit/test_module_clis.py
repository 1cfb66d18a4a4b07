"""The commands run as modules beside `eddyline`: the state check (the chart's init container runs
it) and the S3 server. Their --help shows what is in brackets: typer reads help as rich markup,
where `[/prefix]` once crashed the state check ("closing tag '[/prefix]' doesn't match any open
tag") and `[default: …]` vanished from the S3 server's."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from deploy.cli import objectstore
from deploy.kube import statecheck


def test_help_names_the_location_form() -> None:
    app = typer.Typer()
    app.command()(statecheck.main)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "s3://bucket[/prefix]" in result.output


def test_a_location_that_is_not_s3_is_refused_by_name() -> None:
    app = typer.Typer()
    app.command()(statecheck.main)
    result = CliRunner().invoke(app, ["gs://bucket/x", "--attempts", "1"])
    assert result.exit_code == 1
    assert "'gs://bucket/x' is not an s3://bucket[/prefix] location" in result.output


def test_the_s3_servers_help_keeps_its_defaults() -> None:
    result = CliRunner().invoke(objectstore.app, ["run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "[default: a free one]" in result.output
    assert "[default: ~/.local/state/eddyline/objectstore/data]" in result.output
