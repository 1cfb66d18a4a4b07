"""`python -m deploy.cli` runs the `eddyline` command (the controller is started this way)."""

from deploy.cli.app import app

# Guarded: importing the module (the packaging test imports every one) must not run the CLI.
if __name__ == "__main__":
    app()
