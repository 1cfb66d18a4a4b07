"""Eddyline's controller side: the local stack, the Flink REST client and the CLI."""
