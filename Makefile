# Two entry points, both self-contained on a fresh machine (they create .venv when it is missing):
#   make run    - set up and run the main job on its embedded default
#   make test   - set up and run the tests (what .ci/run calls)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.memsnn-installed
ARGS   ?=

.PHONY: setup run quick test test-all clean-venv

# torch 2.10.0 (a CUDA build from PyPI) and aihwkit take about 7.6 GB in .venv; pip also unpacks
# the wheels in a temporary folder, so the first setup needs about 10 GB free. --no-cache-dir keeps
# pip from storing a second copy of every wheel.
NEED_GB ?= 10

$(STAMP): pyproject.toml
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4/1048576)}'); \
	  if [ "$$free" -lt $(NEED_GB) ]; then \
	    echo "warning: $$free GB free here; the first setup of $(VENV) needs about $(NEED_GB) GB" \
	         "(torch 2.10.0 CUDA build + aihwkit). Free some space if pip fails with 'No space left'." >&2; \
	  fi
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir -e '.[test]'
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
