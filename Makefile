# Two commands do everything on a fresh machine:
#   make test   - builds/fetches the local environment (cached in ~/.cache/autoglm-testenv),
#                 starts it, runs unit and e2e tests against it, stops it
#   make demo   - the local end-to-end demo
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)/hack
# Two pytest-xdist workers share one environment; most e2e time is waiting (docs/testenv.md, Running
# the tests in parallel). `make test PARALLEL=-n0` runs one test at a time.
PARALLEL ?= -n 2 --dist loadgroup

.PHONY: help prereqs venv tools test unit e2e demo run bench testenv-up testenv-down crd manifests clean

help:
	@echo "make test   - unit + e2e tests against a real local cluster, Kafka and Prometheus"
	@echo "make demo   - local end-to-end demo"
	@echo "make run    - the operator in the foreground against the local environment, as the demo runs it (Ctrl-C stops it)"
	@echo "make unit   - unit tests only (no services)"
	@echo "make e2e    - e2e tests only"
	@echo "make testenv-up / testenv-down - keep an environment running between test runs"
	@echo "make bench  - the operator at scale on its own environment (BENCH_N=1000 BENCH_JSON=out/bench.json)"

prereqs:
	@hack/check-prereqs.sh

venv: $(VENV)/.installed

# setuptools warns "Editable installation ... be careful with folders in your working directory
# with the same name" on every editable install of packages from two folders (operator/, predictor/):
# only that message is muted.
$(VENV)/.installed: pyproject.toml | prereqs
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation:UserWarning' $(PY) -m pip install -q -e '.[dev,predictor]'
	@touch $@

tools: prereqs
	bash hack/build-tools.sh all

test: venv tools
	$(PY) -m pytest $(PARALLEL) tests/unit tests/e2e

unit: venv
	$(PY) -m pytest $(PARALLEL) tests/unit

e2e: venv tools
	$(PY) -m pytest $(PARALLEL) tests/e2e

demo: venv tools
	$(PY) -m autoglm_testenv.demo

# The demo stops its operator at the end; this runs it again (same ServiceAccount, same flags).
run: venv tools
	$(PY) -m autoglm_testenv.demo --operator-only

# The operator at scale (docs/benchmarks.md): BENCH_N AutoGLMDeployments on 200 kwok GPU nodes,
# against the floor of creating the same children directly; not a test, not run by `make test`.
BENCH_N ?= 100
BENCH_JSON ?= out/bench-$(BENCH_N).json
bench: venv tools
	$(PY) -m autoglm_testenv.bench --n $(BENCH_N) --json $(BENCH_JSON)

testenv-up: venv tools
	hack/testenv up

testenv-down: venv
	hack/testenv down

# The chart carries copies of crds/ (helm warns on symlinks); tests/unit/manifests/test_chart_crds.py
# fails when they differ.
crd: venv
	$(VENV)/bin/autoglm crd > crds/autoglm.io_autoglmdeployments.yaml
	cp crds/autoglm.io_autoglmdeployments.yaml crds/kopf-peering.yaml charts/autoglm-operator/crds/
	$(PY) hack/gen_api_reference.py

clean:
	rm -rf $(VENV) .pytest_cache

manifests: tools
	hack/render-manifests.sh $$(PYTHONPATH=hack $(PY) -c 'from autoglm_testenv.config import binaries; print(binaries().helm)')
