"""The state check's own command line (the chart's init container runs it): its --help works and
shows the location's form, which rich's markup once turned into a crash ("closing tag '[/prefix]'
doesn't match any open tag")."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

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
