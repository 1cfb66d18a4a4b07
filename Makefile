# Eddyline — two commands on a fresh machine: `make demo` and `make test`.
# Every step is idempotent and cached: the venv is rebuilt only when pyproject.toml changes,
# the JVM jars only when deploy/jvm/pom.xml changes (Maven's own cache is ~/.m2).

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
JVM := .cache/jvm
MVN ?= mvn
MVN_FLAGS := -B -ntp -q
PYTEST_ARGS ?=

.PHONY: setup venv jars monitoring-tools demo test bench check lint typecheck unit integration down clean soak reliability

setup: venv jars

venv: $(VENV)/.installed
jars: $(JVM)/.resolved

# The monitoring tests' tools: Debian's chromium (driven by the playwright package in .venv) and
# a Prometheus server (Debian's binary, unpacked into .cache/prometheus).
monitoring-tools:
	@scripts/ensure-browser.sh
	@scripts/ensure-prometheus.sh

# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kubectl and helm for the
# tests/k8s control plane: built from their Go modules into ~/.cache/eddyline/bin (first time
# 16 min on 2 idle cores with empty Go caches; a no-op once built). See tests/k8s/README.md.
.PHONY: kube-tools k8s
kube-tools:
	@scripts/kube-tools.sh

# The real single-node cluster (deploy/localkube): Debian's docker.io, containerd, runc, CNI
# plugins, debootstrap; kubelet, kube-proxy, CoreDNS and pause from kube-tools. Needs root.
.PHONY: cluster-packages image cluster-up cluster-down cluster-status
cluster-packages:
	@scripts/ensure-cluster-packages.sh

## image: build eddyline:<version> from the Dockerfile into .cache/image/ (no registry needed;
##        IMAGE_BASES=public builds on the public python and maven images instead)
image: setup cluster-packages
	@PY=$(PY) scripts/build-image.sh

## cluster-up: start the real local cluster (kubeconfig in .cache/cluster/kubeconfig) and load
##             the image into its node; cluster-down stops it and leaves the machine as it was
cluster-up: setup kube-tools cluster-packages
	$(PY) -m deploy.localkube up

cluster-down:
	$(PY) -m deploy.localkube down

cluster-status:
	$(PY) -m deploy.localkube status

$(VENV)/.installed: pyproject.toml
	@scripts/ensure-tools.sh
	@echo "==> Python packages into $(VENV) (first run downloads ~700 MB: apache-flink, beam, pandas…)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[dev]'
	@touch $@

$(JVM)/.resolved: deploy/jvm/pom.xml
	@scripts/ensure-tools.sh
	@echo "==> JVM jars through Maven into $(JVM) (Kafka broker, Flink Kafka connector, Flink S3 plugin; ~95 MB)"
	@rm -rf $(JVM)/kafka $(JVM)/flink $(JVM)/s3
	$(MVN) $(MVN_FLAGS) -f deploy/jvm/pom.xml -P kafka dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JVM)/kafka
	$(MVN) $(MVN_FLAGS) -f deploy/jvm/pom.xml -P flink dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JVM)/flink
	$(MVN) $(MVN_FLAGS) -f deploy/jvm/pom.xml -P s3 dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JVM)/s3
	@touch $@

## demo: set up, start the local stack, run the main job and verify its output
demo: setup
	$(VENV)/bin/eddyline up
	$(PY) -m deploy.cli.demo

## test: set up, lint, type-check and run the whole suite against a real stack
test: setup monitoring-tools check kube-tools image
	$(PY) -m pytest -m "not soak" $(PYTEST_ARGS)

check: lint typecheck

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck:
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest tests/unit -m "not soak" $(PYTEST_ARGS)

integration: setup monitoring-tools
	$(PY) -m pytest tests/integration -m "not soak" $(PYTEST_ARGS)

k8s: setup kube-tools
	$(PY) -m pytest tests/k8s $(PYTEST_ARGS)

## bench: job throughput (steady state on 1,000,000 events; the ledger on 100,000 orders),
##        end-to-end latency under a steady rate, the controller and the autoscaler against their
##        baselines (bench/results/); FULL=1 for ten minutes of steady autoscaler load
BENCH_EVENTS ?= 1000000
BENCH_ORDERS ?= 100000
ifdef FULL
BENCH_STEADY ?= 600
else
BENCH_STEADY ?= 180
endif
bench: setup
	$(PY) -m bench.throughput --events $(BENCH_EVENTS) --orders $(BENCH_ORDERS) $(BENCH_ARGS)
	$(PY) -m bench.latency
	$(PY) -m bench.controller
	$(PY) -m bench.autoscaler --steady $(BENCH_STEADY)

## soak: the long fault and fuzz runs (servers killed ten times under 200,000 movements, more fuzzing) with
##       the short ones; figures to bench/results/reliability.json and README's Reliability section
soak: setup monitoring-tools
	$(PY) -m bench.reliability --soak

## reliability: the short fault and fuzz runs only (as in `make test`), with the same report
reliability: setup monitoring-tools
	$(PY) -m bench.reliability

## down: stop the local stack started by `make demo`
down:
	$(VENV)/bin/eddyline down

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
