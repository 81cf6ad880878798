# make test:      the test suite on CPU (what CI runs)
# make train:     prepare WikiText-2, train the CPU smoke config of both models, sample from each
# make reproduce: train both models of config/{attention,grassmann}_$(PAIR).py for each of $(SEEDS),
#                 then compare.py into results/$(TAG)/; SMOKE=1 runs the CPU smoke pair (minutes).
#                 e.g. make reproduce PAIR=wt2_l12 SEEDS="1 2 3" TRAIN_ARGS="--compile=False"
# make reproduce-paper: the paper's settings (config/paper_*.py, BERT WordPiece), compared with its table
# make recipes:   from the seed reproduction's recipe to ours, one factor at a time (config/recipes/), one
#                 epoch per run, resumable like the study; e.g. make recipes RECIPE_ARMS="seed_attention=seed/attention"
# make reproduce-seed: the seed reproduction's recipe on the raw variant (downloaded into SEED_DATA), both
#                 models, beside its published 238.71 and 321.05 (GPU expected)
# make study:     the "Closing the gap" study (config/study/), one epoch per run, run by run; a finished
#                 run's results.json and log go to results/study/runs/ and are not run again, so an
#                 interrupted study resumes where it stopped. e.g. make study STUDY_SEEDS="43 44"
# make stage4:    the study's stage 4 (partners) in today's units, seeds 42-44, into results/stage4/
# make stage6:    stage 6, one epoch per run in float32 on any CPU, into results/stage6/: the pairings, a hybrid and a
#                 short convolution on the best, attention at the mixer's reach, the publications' models, two other
#                 normalisations, each model's learning rate; on another CPU model than its baselines' a check first
# make stage7:    stage 7, each model at its best epoch (30-epoch schedule, early stopping), bf16 on a CPU with fast
#                 bf16 only, into results/stage7/; resumable: a cut run resumes from its last.pt
# Each target creates .venv and installs requirements.txt on first use. prepare.py downloads the data,
# unless OFFLINE_DATA names a folder holding an offline copy: wikitext-2/ (the tokens variant),
# bert-base-uncased/vocab.txt and tiktoken_cache/ (tiktoken's GPT-2 files), e.g. OFFLINE_DATA=~/wt2
PYTHON ?= python3
comma := ,
PY := .venv/bin/python
OFFLINE_DATA ?=
ifneq ($(and $(OFFLINE_DATA),$(wildcard $(OFFLINE_DATA)/tiktoken_cache)),)
export TIKTOKEN_CACHE_DIR ?= $(abspath $(OFFLINE_DATA)/tiktoken_cache)
endif
PREPARE_ARGS ?= $(if $(and $(OFFLINE_DATA),$(wildcard $(OFFLINE_DATA)/wikitext-2/wiki.train.tokens)),--src $(OFFLINE_DATA)/wikitext-2 --variant tokens)

.venv/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv .venv
	$(PY) -m pip install -q -r requirements.txt pytest pytest-xdist
	touch $@

# the tests run side by side, one process per core (pytest-xdist; a .venv from before it gets it here);
# TEST_ARGS= runs them in one process
TEST_ARGS ?= -n auto
test: .venv/.installed
	$(PY) -c 'import xdist' 2>/dev/null || $(PY) -m pip install -q pytest-xdist
	$(PY) -m pytest -q $(TEST_ARGS)

data/wikitext2/meta.json: | .venv/.installed
	$(PY) prepare.py $(PREPARE_ARGS)

train: data/wikitext2/meta.json
	$(PY) train.py config/attention_smoke.py
	$(PY) train.py config/grassmann_smoke.py
	$(PY) sample.py --out_dir=out-attention-smoke --num_samples=1 --max_new_tokens=60
	$(PY) sample.py --out_dir=out-grassmann-smoke --num_samples=1 --max_new_tokens=60

SEEDS ?= 42 43 44
PAIR ?= $(if $(SMOKE),smoke,wt2)
TAG ?= $(PAIR)
OUT ?= out
RESULTS ?= results
TRAIN_ARGS ?=
DATA_DEP ?= data/wikitext2/meta.json
reproduce: $(DATA_DEP)
	for seed in $(SEEDS); do for mixer in attention grassmann; do \
	  $(PY) train.py config/$${mixer}_$(PAIR).py --seed=$$seed --out_dir=$(OUT)/$(TAG)/$$mixer-seed$$seed $(TRAIN_ARGS) || exit 1; \
	done; done
	$(PY) compare.py $(foreach s,$(SEEDS),$(OUT)/$(TAG)/attention-seed$(s) $(OUT)/$(TAG)/grassmann-seed$(s)) --out $(RESULTS)/$(TAG)

# the paper's settings in its own units (GPU expected): 6 layers with both lag schedules, 12 layers
PAPER_SEEDS ?= 42
reproduce-paper: $(if $(DATA_DEP),data/wikitext2_bert/meta.json)
	for seed in $(PAPER_SEEDS); do for c in attention_l6 grassmann_l6 grassmann_l6_lags888 attention_l12 grassmann_l12; do \
	  $(PY) train.py config/paper_$$c.py --seed=$$seed --out_dir=$(OUT)/paper/$$c-seed$$seed $(TRAIN_ARGS) || exit 1; \
	done; done
	$(PY) compare.py $(OUT)/paper/*_l6-seed* $(OUT)/paper/*_l6_*-seed* --out $(RESULTS)/paper_l6 \
	  --published "the paper" 248.4 275.7 --published "Hydra reproduction (seed)" 238.71 321.05
	$(PY) compare.py $(OUT)/paper/*_l12-seed* --out $(RESULTS)/paper_l12 --published "the paper" 235.2 261.1

# the seed reproduction's recipe (config/seed/) on the raw variant it trained on, downloaded, for both models,
# compared with its published 238.71 and 321.05 (GPU expected: fp16, 30 epochs)
SEED_DATA ?= data/wikitext2_bert_raw
SEED_PREPARE_ARGS ?=
reproduce-seed: | .venv/.installed
	test -f $(SEED_DATA)/meta.json || $(PY) prepare.py --tokenizer bert --variant raw --out $(SEED_DATA) $(SEED_PREPARE_ARGS)
	for seed in $(PAPER_SEEDS); do for mixer in attention grassmann; do \
	  $(PY) train.py config/seed/$$mixer.py --dataset=$(abspath $(SEED_DATA)) --seed=$$seed \
	    --out_dir=$(OUT)/seed/$$mixer-seed$$seed $(TRAIN_ARGS) || exit 1; \
	done; done
	$(PY) compare.py $(OUT)/seed/*-seed* --out $(RESULTS)/seed --paired --published "Hydra reproduction (seed)" 238.71 321.05

data/wikitext2_bert/meta.json: | .venv/.installed
	$(PY) prepare.py --tokenizer bert $(PREPARE_ARGS) $(if $(and $(OFFLINE_DATA),$(wildcard $(OFFLINE_DATA)/bert-base-uncased/vocab.txt)),--vocab $(OFFLINE_DATA)/bert-base-uncased/vocab.txt)

STUDY_ARMS ?= attention_post grassmann_post_all grassmann_post_layer grassmann_pre_all grassmann_pre_layer attention_pre
STUDY_SEEDS ?= 42
STUDY_DIR ?= results/study
study: $(if $(DATA_DEP),data/wikitext2_bert/meta.json)
	for seed in $(STUDY_SEEDS); do for arm in $(STUDY_ARMS); do \
	  run=$(STUDY_DIR)/runs/$$arm-seed$$seed; out=$(OUT)/$(notdir $(STUDY_DIR))/$$arm-seed$$seed; \
	  test -f $$run/results.json && continue; \
	  rm -rf $$out && mkdir -p $$out; \
	  PYTHONUNBUFFERED=1 $(PY) train.py config/study/protocol.py config/study/$$arm.py --seed=$$seed --out_dir=$$out \
	    $(TRAIN_ARGS) 2>&1 | tee $$out/train.log; \
	  test -f $$out/results.json || exit 1; \
	  mkdir -p $$run && cp $$out/results.json $$out/train.log $$run/; \
	done; done
	$(PY) compare.py $(STUDY_DIR)/runs/* --out $(STUDY_DIR)

# stage 4 (results/stage4/): the study in the units with one token per <unk>, three seeds: the baselines
# again, then the best arm with each kind of partner; resumable like the study
STAGE4_ARMS ?= attention_post attention_pre grassmann_pre_all_learned_sub4 grassmann_pre_all_learned_sub4_ema \
  grassmann_pre_all_learned_sub4_selective
stage4:
	$(MAKE) study STUDY_DIR=results/stage4 STUDY_ARMS="$(STAGE4_ARMS)" STUDY_SEEDS="$(or $(STAGE4_SEEDS),42 43 44)"

# runs: the runner under every table below. Each arm NAME=CONFIG[,CONFIG...] (files under config/) at each of
# RUN_SEEDS, seed-major, after RUN_PROTOCOL; a finished run (RUN_DIR/runs/NAME-seedN) is not run again, an interrupted
# one resumes from its last.pt (in RUN_OUT), and one that diverged is a result, kept as its log and a 'diverged' file.
# Every run of a table on one kind of machine: RUN_MACHINE is what hardware.py must say a run that sets RUN_DTYPE
# gets here, else nothing trains. COMMIT=1 commits each finished run's folder as it ends (a long session's work
# survives its end), a diverged one too
RUN_SEEDS ?= 42
RUN_ARMS ?=
RUN_PROTOCOL ?= config/stage6/protocol.py
RUN_DTYPE ?= float32
RUN_MACHINE ?= cpu/float32
RUN_DIR ?= results/stage6
RUN_OUT ?= $(OUT)/$(notdir $(RUN_DIR))
runs: $(if $(DATA_DEP),data/wikitext2_bert/meta.json)
	$(if $(strip $(RUN_ARMS)),$(PY) hardware.py --dtype $(RUN_DTYPE) --expect $(RUN_MACHINE))
	for seed in $(RUN_SEEDS); do for arm in $(RUN_ARMS); do \
	  name=$${arm%%=*}; configs=$$(echo $${arm#*=} | tr , '\n' | sed 's|.*|config/&.py|'); \
	  run=$(RUN_DIR)/runs/$$name-seed$$seed; out=$(RUN_OUT)/$$name-seed$$seed; \
	  test -f $$run/results.json -o -f $$run/diverged && continue; \
	  if test -f $$out/last.pt; then again=--init_from=resume; else again=; rm -rf $$out && mkdir -p $$out; fi; \
	  PYTHONUNBUFFERED=1 $(PY) train.py $(RUN_PROTOCOL) $$configs --seed=$$seed --out_dir=$$out $$again \
	    $(TRAIN_ARGS) 2>&1 | tee -a $$out/train.log; \
	  if grep -q 'is nan at iteration\|is inf at iteration' $$out/train.log; then \
	    mkdir -p $$run && cp $$out/train.log $$run/ && touch $$run/diverged && $(COMMIT_RUN) continue; fi; \
	  test -f $$out/results.json && grep -q '"completed": true' $$out/results.json || exit 1; \
	  grep -q '"dtype": "$(lastword $(subst /, ,$(RUN_MACHINE)))"' $$out/results.json || { \
	    echo "make: $$out did not train in $(RUN_MACHINE)'s dtype (TRAIN_ARGS?): not kept" >&2; exit 1; }; \
	  mkdir -p $$run && cp $$out/results.json $$out/train.log $$run/; \
	  $(COMMIT_RUN) \
	done; done
COMMIT_RUN = $(if $(COMMIT),(cd $(RUN_DIR) && git add runs/$$name-seed$$seed && git commit -qm \
  "$$name seed $$seed, $(RUN_MACHINE) on $(SLUG)" -- runs/$$name-seed$$seed);)
SLUG = $(shell $(PY) hardware.py --slug)

# stage 6 (results/stage6/): one epoch per run in float32 (config/stage6/protocol.py) on any CPU, with its own
# baselines: (a) the pairings; (b) the best of them (STAGE6_BEST) with one attention block and with a short
# convolution; (c) attention at the mixer's reach and the publications' models; (d) two other normalisations;
# (e) three more learning rates of attention, the unnormalised wedge and its hybrid at seed 42, then seeds 43 and 44
# of each at its best one, once (e) has chosen it (STAGE6_TUNED="NAME=CONFIGS ...", the lr runs' names)
STAGE6_PAIRINGS ?= attention_post=study/attention_post grassmann_pre_all_learned_sub4=study/grassmann_pre_all_learned_sub4 \
  grassmann_pre_all_learned_sub4_unnormalised=study/grassmann_pre_all_learned_sub4_unnormalised \
  grassmann_pre_all_learned_sub4_linear=study/grassmann_pre_all_learned_sub4_linear
STAGE6_BEST ?= grassmann_pre_all_learned_sub4_unnormalised
STAGE6_CLOSERS ?= $(if $(STAGE6_BEST),$(STAGE6_BEST)_attn3=study/$(STAGE6_BEST)$(comma)stage6/attn3 \
  $(STAGE6_BEST)_zconv4=study/$(STAGE6_BEST)$(comma)stage6/zconv4)
STAGE6_REACH ?= attention_post_window16=study/attention_post_window16 grassmann_post_layer=study/grassmann_post_layer \
  grassmann_post_all=study/grassmann_post_all
STAGE6_NORMS ?= grassmann_pre_all_learned_sub4_unit=study/grassmann_pre_all_learned_sub4,stage6/unit \
  grassmann_pre_all_learned_sub4_unnormalised_rms=study/grassmann_pre_all_learned_sub4_unnormalised,stage6/rms
STAGE6_LR_ARMS ?= attention_post=study/attention_post \
  grassmann_pre_all_learned_sub4_unnormalised=study/grassmann_pre_all_learned_sub4_unnormalised \
  grassmann_pre_all_learned_sub4_unnormalised_attn3=study/grassmann_pre_all_learned_sub4_unnormalised,stage6/attn3
STAGE6_LR ?= $(foreach lr,5e-4 2e-3 3e-3,$(foreach arm,$(STAGE6_LR_ARMS),$(firstword $(subst =, ,$(arm)))_lr$(lr)=$(lastword \
  $(subst =, ,$(arm)))$(comma)stage6/lr$(lr)))
STAGE6_TUNED ?=
STAGE6_CHAIN ?= attention_post,attention_post_window16,grassmann_pre_all_learned_sub4,grassmann_pre_all_learned_sub4_linear,grassmann_pre_all_learned_sub4_unnormalised
STAGE6_BASELINES ?= attention_post,grassmann_pre_all_learned_sub4_unnormalised,grassmann_pre_all_learned_sub4
STAGE6_DIR ?= results/stage6
stage6: stage6-machine
	$(MAKE) runs RUN_SEEDS="42 43 44" RUN_ARMS="$(STAGE6_PAIRINGS)" RUN_DIR=$(STAGE6_DIR)
	$(MAKE) runs RUN_SEEDS="42 43 44" RUN_ARMS="$(STAGE6_CLOSERS)" RUN_DIR=$(STAGE6_DIR)
	$(MAKE) runs RUN_SEEDS="42 43 44" RUN_ARMS="$(STAGE6_REACH)" RUN_DIR=$(STAGE6_DIR)
	$(MAKE) runs RUN_SEEDS="42 43 44" RUN_ARMS="$(STAGE6_NORMS)" RUN_DIR=$(STAGE6_DIR)
	$(MAKE) runs RUN_SEEDS=42 RUN_ARMS="$(STAGE6_LR)" RUN_DIR=$(STAGE6_DIR)
	$(MAKE) runs RUN_SEEDS="43 44" RUN_ARMS="$(STAGE6_TUNED)" RUN_DIR=$(STAGE6_DIR)
	$(PY) compare.py $(STAGE6_DIR)/runs/* --out $(STAGE6_DIR) --baselines $(STAGE6_BASELINES) --chain $(STAGE6_CHAIN)

# float32 on a CPU model other than the baselines' is the same computation up to the order of its roundings: there,
# before anything else, attention_post seed 42 again must land within 0.5% of the baselines' run (205.07); once per
# kind of CPU (STAGE6_DIR/machines/<hardware.py --slug>/, committed): a kind whose check failed stops here at once.
# Where no baseline ran yet, there is nothing to check: this CPU's runs are the table's
STAGE6_GATE = $(STAGE6_DIR)/machines/$(SLUG)
STAGE6_REF = $(STAGE6_DIR)/runs/attention_post-seed42/results.json
stage6-machine: $(if $(DATA_DEP),data/wikitext2_bert/meta.json)
	test ! -f $(STAGE6_REF) || $(PY) hardware.py --same-cpu $(STAGE6_REF) || { \
	  $(MAKE) runs RUN_SEEDS=42 RUN_ARMS=attention_post=study/attention_post RUN_DIR=$(STAGE6_GATE) RUN_OUT=$(OUT)/stage6-machines && \
	  $(PY) compare.py $(STAGE6_GATE)/runs/attention_post-seed42 --reproduces $(STAGE6_DIR)/runs/attention_post-seed42 \
	    --within 0.005; }

# stage 7 (results/stage7/): each model at its best epoch, config/stage7/protocol.py (30-epoch schedule, evaluated
# every epoch, stopped 2 epochs after the best) in bf16, only on a CPU with fast bf16 (AMX or AVX-512 BF16); seed 42 of
# the four arms, then seeds 43 and 44 of the first three. Before the first run, compile_check.py decides once whether
# the table compiles (STAGE7_DIR/compile.json, committed); resumable like stage 6, a cut run from its last.pt
STAGE7_ARMS ?= attention_post=study/attention_post \
  grassmann_pre_all_learned_sub4_unnormalised=study/grassmann_pre_all_learned_sub4_unnormalised \
  grassmann_pre_all_learned_sub4_unnormalised_attn3=study/grassmann_pre_all_learned_sub4_unnormalised,stage6/attn3 \
  grassmann_pre_all_learned_sub4=study/grassmann_pre_all_learned_sub4
STAGE7_COMPILE_ARMS ?= study/attention_post,study/grassmann_pre_all_learned_sub4_unnormalised
STAGE7_DIR ?= results/stage7
STAGE7_VARS = RUN_DIR=$(STAGE7_DIR) RUN_PROTOCOL=config/stage7/protocol.py RUN_DTYPE=auto RUN_MACHINE=cpu/bfloat16 \
  TRAIN_ARGS="--compile=$$($(PY) -c 'import json; print(json.load(open("$(STAGE7_DIR)/compile.json"))["compile"])') $(TRAIN_ARGS)"
stage7: $(if $(DATA_DEP),data/wikitext2_bert/meta.json)
	$(PY) hardware.py --expect cpu/bfloat16
	test -f $(STAGE7_DIR)/compile.json || $(PY) compile_check.py --out $(STAGE7_DIR)/compile.json \
	  --arms $(STAGE7_COMPILE_ARMS) --train_args="$(TRAIN_ARGS)"
	$(MAKE) runs RUN_SEEDS=42 RUN_ARMS="$(STAGE7_ARMS)" $(STAGE7_VARS)
	$(MAKE) runs RUN_SEEDS="43 44" RUN_ARMS="$(wordlist 1,3,$(STAGE7_ARMS))" $(STAGE7_VARS)
	$(PY) compare.py $(STAGE7_DIR)/runs/* --out $(STAGE7_DIR) \
	  --baselines attention_post,grassmann_pre_all_learned_sub4_unnormalised,grassmann_pre_all_learned_sub4

# your own arms (docs/variants.md): ARMS="NAME=CONFIG[,CONFIG...]" under config/, beside ARM_BASELINES, one epoch
# each at ARM_SEEDS with stage 6's float32 protocol, every run of the table on this kind of machine (ARMS_MACHINE:
# cuda/float32 on a GPU); resumable like stage 6, then compare.py's table in ARMS_DIR/results.md
ARMS ?=
ARM_BASELINES ?= attention_post=study/attention_post grassmann_pre_all_learned_sub4=study/grassmann_pre_all_learned_sub4
ARM_SEEDS ?= 42 43 44
ARMS_DIR ?= results/arms
ARMS_MACHINE ?= cpu/float32
arms:
	$(if $(strip $(ARMS)),,@echo 'make: name your arms: make arms ARMS="NAME=CONFIG[,CONFIG...]" (docs/variants.md)' >&2 && exit 2)
	$(MAKE) runs RUN_SEEDS="$(ARM_SEEDS)" RUN_ARMS="$(ARM_BASELINES) $(ARMS)" RUN_DIR=$(ARMS_DIR) RUN_MACHINE=$(ARMS_MACHINE)
	$(PY) compare.py $(ARMS_DIR)/runs/* --out $(ARMS_DIR)

# the recipe runs (results/recipes/): from the seed reproduction's recipe to ours, one factor at a time,
# one epoch each on the CPU; an arm is NAME=CONFIG[,CONFIG...] under config/, run in that order, then
# config/recipes/protocol.py; a finished arm's results.json is not run again, as in `make study`
RECIPE_ARMS ?= seed_attention=seed/attention seed_grassmann=seed/grassmann \
  ours_attention=paper_attention_l6,recipes/no_warmup ours_grassmann=study/grassmann_post_all,recipes/no_warmup \
  ours_lr3e-4_attention=paper_attention_l6,recipes/lr3e-4,recipes/no_warmup \
  ours_lr3e-4_grassmann=study/grassmann_post_all,recipes/lr3e-4,recipes/no_warmup \
  seed_init_normal_attention=seed/attention,recipes/init_normal seed_init_normal_grassmann=seed/grassmann,recipes/init_normal \
  seed_decay_matrices_attention=seed/attention,recipes/decay_matrices seed_decay_matrices_grassmann=seed/grassmann,recipes/decay_matrices \
  ours_warmup_attention=paper_attention_l6,recipes/warmup ours_warmup_grassmann=study/grassmann_post_all,recipes/warmup
RECIPE_SEEDS ?= 42
recipes: $(if $(DATA_DEP),data/wikitext2_bert/meta.json)
	for seed in $(RECIPE_SEEDS); do for arm in $(RECIPE_ARMS); do \
	  name=$${arm%%=*}; configs=$$(echo $${arm#*=} | tr , '\n' | sed 's|.*|config/&.py|'); \
	  run=results/recipes/runs/$$name-seed$$seed; out=$(OUT)/recipes/$$name-seed$$seed; \
	  test -f $$run/results.json && continue; \
	  rm -rf $$out && mkdir -p $$out; \
	  PYTHONUNBUFFERED=1 $(PY) train.py $$configs config/recipes/protocol.py --seed=$$seed --out_dir=$$out \
	    $(TRAIN_ARGS) 2>&1 | tee $$out/train.log; \
	  test -f $$out/results.json || exit 1; \
	  mkdir -p $$run && cp $$out/results.json $$out/train.log $$run/; \
	done; done
	$(PY) compare.py results/recipes/runs/* --out results/recipes --paired

.PHONY: test train reproduce reproduce-paper reproduce-seed study stage4 runs stage6 stage6-machine stage7 arms recipes
