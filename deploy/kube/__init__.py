"""Kubernetes mode: FlinkJob custom resources as the store, Events, TaskManager scaling."""
