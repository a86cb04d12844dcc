# ackwatch developer commands. `make test` and `make demo` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint demo bench soak clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

demo: install
	$(PY) -m ackwatch.demo

# BENCH_ARGS="--targets 1,4": both backends, each its own results file; then target 8
# (several nodes, bench/nodes.py) with NODES_ARGS="--mailboxes 40" (NODES_ARGS=skip: none)
bench: install
	$(PY) bench/run.py $(BENCH_ARGS); sqlite=$$?; \
	$(PY) bench/run.py --database postgresql $(BENCH_ARGS); postgresql=$$?; \
	nodes=0; if [ "$(NODES_ARGS)" != skip ]; then $(PY) bench/nodes.py $(NODES_ARGS); nodes=$$?; fi; \
	exit $$((sqlite || postgresql || nodes))

soak: install  # SOAK_ARGS="--minutes 60 --sighup-every 120 --kill9-at 900": bench/README.md
	$(PY) bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
