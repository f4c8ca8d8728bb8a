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

.PHONY: venv demo demo-quick test test-slow test-all e2e bench lint clean

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
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

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

clean:
	rm -rf $(VENV) .pytest_cache runs
