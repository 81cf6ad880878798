# make test:  the test suite on CPU (what CI runs)
# make train: prepare WikiText-2, train the CPU smoke config of both models, sample from each
# Each target creates .venv and installs requirements.txt on first use. With ../shared/data present
# (an offline copy of WikiText-2), `make train` prepares from it; otherwise prepare.py downloads.
PYTHON ?= python3
PY := .venv/bin/python
SHARED ?= ../shared/data
export TIKTOKEN_CACHE_DIR ?= $(abspath $(SHARED)/tiktoken_cache)
PREPARE_ARGS ?= $(if $(wildcard $(SHARED)/wikitext-2/wiki.train.tokens),--src $(SHARED)/wikitext-2 --variant tokens)

.venv/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv .venv
	$(PY) -m pip install -q -r requirements.txt pytest
	touch $@

test: .venv/.installed
	$(PY) -m pytest -q

data/wikitext2/meta.json: | .venv/.installed
	$(PY) prepare.py $(PREPARE_ARGS)

train: data/wikitext2/meta.json
	$(PY) train.py config/attention_smoke.py
	$(PY) train.py config/grassmann_smoke.py
	$(PY) sample.py --out_dir=out-attention-smoke --num_samples=1 --max_new_tokens=60
	$(PY) sample.py --out_dir=out-grassmann-smoke --num_samples=1 --max_new_tokens=60

.PHONY: test train
