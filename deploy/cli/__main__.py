"""`python -m deploy.cli` runs the `eddyline` command (the controller is started this way)."""

from deploy.cli.app import app

app()
