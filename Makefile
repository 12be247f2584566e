# Two entry points, both self-contained on a fresh machine (they create .venv when it is missing):
#   make run    - set up and run the main job on its embedded default
#   make test   - set up and run the tests (what .ci/run calls)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.memsnn-installed
ARGS   ?=

.PHONY: setup run quick test test-all clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/memsnn compare $(ARGS)

quick: $(STAMP)
	$(VENV)/bin/memsnn compare --quick $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

clean-venv:
	rm -rf $(VENV)
