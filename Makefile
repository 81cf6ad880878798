# make test: the test suite on CPU; make train: prepare WikiText-2 and train both smoke models.
# Each target creates .venv and installs requirements.txt on first use.
PYTHON ?= python3
PY := .venv/bin/python
SHARED ?= ../shared/data
export TIKTOKEN_CACHE_DIR ?= $(abspath $(SHARED)/tiktoken_cache)

.venv/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv .venv
	$(PY) -m pip install -q -r requirements.txt pytest
	touch $@

test: .venv/.installed
	$(PY) -m pytest -q

.PHONY: test
