"""Eddyline's controller side. One pipeline, observe → decide → act, in `controller/` (the core,
the same on a laptop and on Kubernetes); `flink/` is the one face of Flink; `local/` and `kube/`
are the two modes, each wired in its `wiring.py` and never importing the other; `cli/` is the
`eddyline` command; `datagen/` generates input; `localkube/` runs a real single-node cluster.
The picture, and which module holds what: docs/architecture.md.
"""
