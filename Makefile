# Two commands on a fresh machine:  `make demo` (the CPU main job) and `make test` (the test suite).
# Both create .venv on first use; nothing needs to be installed by hand.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed-stamp
export TORCHDYNAMO_DISABLE = 1
export HF_HUB_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: venv demo demo-quick test test-slow test-oracle test-all e2e bench lint lock clean

venv: $(STAMP)

# torch is installed first and pinned in every later call, so no dependency can swap in a CUDA build.
$(STAMP): requirements/cpu.txt requirements/nodeps.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c requirements/constraints.txt -r requirements/cpu.txt
	$(PIP) install -q --no-deps -r requirements/nodeps.txt
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

demo: venv
	$(PY) -m openrlhf_steer.apps.demo run --output-dir runs/demo

demo-quick: venv
	$(PY) -m openrlhf_steer.apps.demo run --quick --output-dir runs/demo-quick

test: venv
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: venv
	$(PY) -m pytest -m "slow and not oracle" $(PYTEST_ARGS)

# The graders against the authors' and the official code, where a user cache holds them (each test skips and says
# why where it does not): minutes, so not part of CI.
test-oracle: venv
	$(PY) -m pytest -m oracle $(PYTEST_ARGS)

# openrlhf-steer train through OpenRLHF's own train() on CPU (local Ray, stand-in rollout engine): docs/openrlhf.md
e2e: venv
	$(PY) -m pytest -m slow tests/test_openrlhf_e2e.py $(PYTEST_ARGS)

test-all: venv
	$(PY) -m pytest $(PYTEST_ARGS)

bench: venv
	$(PY) benchmarks/entropy_pass.py
	$(PY) benchmarks/math_grader_throughput.py
	$(PY) benchmarks/actor_memory.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The GPU image's whole Python environment, resolved from this (any) machine for the image's platform:
# Linux x86_64 with Ubuntu 22.04's glibc 2.35, Python 3.11, torch's CUDA wheels from PyPI. Only files
# uploaded before LOCK_DATE count, so a rerun gives the same lock until LOCK_DATE is moved on purpose.
# uv runs from its own tool venv under build/ (never .venv, whose torch stays the CPU build).
UV_VERSION = 0.13.10
LOCK_DATE  = 2026-12-07T00:00:00Z
LOCK_UV    = build/lock-tools/bin/uv
LOCK_FLAGS = --no-config --default-index https://pypi.org/simple --python-version 3.11 \
	--python-platform x86_64-manylinux_2_35 --exclude-newer $(LOCK_DATE) --generate-hashes \
	--custom-compile-command "make lock"

$(LOCK_UV):
	$(PYTHON) -m venv build/lock-tools
	build/lock-tools/bin/pip install -q uv==$(UV_VERSION)

lock: $(LOCK_UV)
	$(LOCK_UV) pip compile $(LOCK_FLAGS) --extra train --extra ifeval setup.py requirements/image.in \
		-o requirements/image.lock
	$(LOCK_UV) pip compile $(LOCK_FLAGS) -c requirements/image.lock requirements/image-build.in \
		-o requirements/image-build.lock

clean:
	rm -rf $(VENV) .pytest_cache runs
