"""The local mode: the stack's supervisor and its processes (stack), the SQLite job store (store),
the TaskManager slots the supervisor provides (slots), and the S3-compatible server for job state
(objectstore). Only the CLI's local wiring imports this package; the controller core does not."""
