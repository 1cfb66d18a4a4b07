"""PyFlink jobs. Each module has `main(argv)` and runs as `python -m jobs.<name> [flags]`."""
