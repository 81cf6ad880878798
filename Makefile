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
# make stage5:    stage 5: a reused baseline again (it must repeat), the controls (windowed attention,
#                 unnormalised and linear pairs), the publications' models, each model's learning rate and
#                 the 30-epoch pair, into results/stage5/; only on a CPU with fast bf16 (STAGE5_MACHINE)
# make stage6:    stage 6: stage 5's pairings in float32 on any CPU, then one attention block and a short convolution
#                 on the best of them (STAGE6_BEST), into results/stage6/
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

# stage 5 (results/stage5/): the controls, the publications' models and each model's learning rate, one epoch
# each after config/study/protocol.py. An arm is NAME=CONFIG[,CONFIG...] under config/ (as in make recipes);
# the phases run in issue 33's order, a finished run is not run again, and an interrupted one resumes from
# its last.pt; a run that diverges is a result, kept as its log and a 'diverged' file. The controls run first
# at three seeds; they choose STAGE5_BEST, the best attention-free arm, whose learning rates then run beside
# attention_post's; STAGE5_TUNED (each model at its best lr, seeds 43 and 44) and STAGE5_LONG (the 30-epoch
# pair, config/stage5/long.py, seeds 42-44) are named once the lr runs have chosen them, e.g.
# make stage5 STAGE5_BEST=grassmann_pre_all_learned_sub4_selective STAGE5_LONG="attention_post_long=study/attention_post,stage5/long"
STAGE5_CONTROLS ?= attention_post_window16=study/attention_post_window16 \
  grassmann_pre_all_learned_sub4_unnormalised=study/grassmann_pre_all_learned_sub4_unnormalised \
  grassmann_pre_all_learned_sub4_linear=study/grassmann_pre_all_learned_sub4_linear
STAGE5_BEST ?=
STAGE5_LR ?= $(foreach lr,5e-4 2e-3 3e-3,attention_post_lr$(lr)=study/attention_post,stage5/lr$(lr) \
  $(if $(STAGE5_BEST),$(STAGE5_BEST)_lr$(lr)=study/$(STAGE5_BEST)$(comma)stage5/lr$(lr)))
STAGE5_PUBLISHED ?= paper_grassmann_l6=paper_grassmann_l6 grassmann_post_all=study/grassmann_post_all
STAGE5_TUNED ?=
STAGE5_LONG ?=
STAGE5_CHAIN ?= attention_post,attention_post_window16,grassmann_pre_all_learned_sub4,grassmann_pre_all_learned_sub4_linear,grassmann_pre_all_learned_sub4_unnormalised
STAGE5_DIR ?= results/stage5
# every run of the table on one kind of machine: stage 4's baselines trained in bf16 on a CPU with AVX-512 BF16;
# elsewhere make stage5 stops before training (set STAGE5_MACHINE=cpu/float32 for a table of your own, baselines included)
STAGE5_MACHINE ?= cpu/bfloat16
STAGE5_REPRODUCE ?= attention_post=study/attention_post
STAGE5_REPRODUCE_SEED ?= 42
stage5:
	$(if $(strip $(STAGE5_REPRODUCE)),$(MAKE) stage5-reproduce)
	$(MAKE) stage5-runs S5_SEEDS="42 43 44" S5_ARMS="$(STAGE5_CONTROLS)"
	$(if $(STAGE5_BEST),,@echo "make: the controls are done; name the best attention-free arm: STAGE5_BEST=ARM" && exit 1)
	$(MAKE) stage5-runs S5_SEEDS=42 S5_ARMS="$(STAGE5_LR)"
	$(MAKE) stage5-runs S5_SEEDS="42 43 44" S5_ARMS="$(STAGE5_PUBLISHED)"
	$(MAKE) stage5-runs S5_SEEDS="43 44" S5_ARMS="$(STAGE5_TUNED)"
	$(MAKE) stage5-runs S5_SEEDS="42 43 44" S5_ARMS="$(STAGE5_LONG)"
	$(PY) compare.py $(STAGE5_DIR)/runs/* --out $(STAGE5_DIR) --chain $(STAGE5_CHAIN)

# before anything else, a reused baseline again, on this code and this kind of machine: the reused runs join the
# table only if it gives their best val ppl again (CPU runs repeat bit for bit on one kind of CPU). Once per kind
# (STAGE5_DIR/reproduced/<hardware.py --slug>/, committed): a kind whose gate failed stops here at once
STAGE5_GATE = $(STAGE5_DIR)/reproduced/$(shell $(PY) hardware.py --slug)
stage5-reproduce:
	$(MAKE) stage5-runs S5_SEEDS=$(STAGE5_REPRODUCE_SEED) S5_ARMS="$(STAGE5_REPRODUCE)" STAGE5_DIR=$(STAGE5_GATE) \
	  OUT=$(OUT)/reproduced
	$(PY) compare.py $(STAGE5_GATE)/runs/$(firstword $(subst =, ,$(STAGE5_REPRODUCE)))-seed$(STAGE5_REPRODUCE_SEED) \
	  --reproduces $(STAGE5_DIR)/runs/$(firstword $(subst =, ,$(STAGE5_REPRODUCE)))-seed$(STAGE5_REPRODUCE_SEED)

# stage5-runs is also stage 6's: S5_PROTOCOL is the file before each arm's, S5_DTYPE the dtype it sets (the machine
# check asks hardware.py what a run gets with it), S5_OUT where the runs train
S5_PROTOCOL ?= config/study/protocol.py
S5_DTYPE ?= auto
S5_OUT ?= $(OUT)/stage5
stage5-runs: $(if $(DATA_DEP),data/wikitext2_bert/meta.json)
	$(if $(strip $(S5_ARMS)),$(PY) hardware.py --dtype $(S5_DTYPE) --expect $(STAGE5_MACHINE))
	for seed in $(S5_SEEDS); do for arm in $(S5_ARMS); do \
	  name=$${arm%%=*}; configs=$$(echo $${arm#*=} | tr , '\n' | sed 's|.*|config/&.py|'); \
	  run=$(STAGE5_DIR)/runs/$$name-seed$$seed; out=$(S5_OUT)/$$name-seed$$seed; \
	  test -f $$run/results.json -o -f $$run/diverged && continue; \
	  if test -f $$out/last.pt; then again=--init_from=resume; else again=; rm -rf $$out && mkdir -p $$out; fi; \
	  PYTHONUNBUFFERED=1 $(PY) train.py $(S5_PROTOCOL) $$configs --seed=$$seed --out_dir=$$out $$again \
	    $(TRAIN_ARGS) 2>&1 | tee -a $$out/train.log; \
	  if grep -q 'is nan at iteration\|is inf at iteration' $$out/train.log; then \
	    mkdir -p $$run && cp $$out/train.log $$run/ && touch $$run/diverged && continue; fi; \
	  test -f $$out/results.json && grep -q '"completed": true' $$out/results.json || exit 1; \
	  grep -q '"dtype": "$(lastword $(subst /, ,$(STAGE5_MACHINE)))"' $$out/results.json || { \
	    echo "make: $$out did not train in $(STAGE5_MACHINE)'s dtype (TRAIN_ARGS?): not kept" >&2; exit 1; }; \
	  mkdir -p $$run && cp $$out/results.json $$out/train.log $$run/; \
	done; done

# stage 6 (results/stage6/): stage 5's pairings again in float32, on any CPU, with their own baselines (a), then the
# best of the Grassmann-family arms with one attention block and with a short convolution (b, STAGE6_BEST names
# it once (a) has chosen it); resumable like stage 5, a diverged run kept
STAGE6_PAIRINGS ?= attention_post=study/attention_post grassmann_pre_all_learned_sub4=study/grassmann_pre_all_learned_sub4 \
  grassmann_pre_all_learned_sub4_unnormalised=study/grassmann_pre_all_learned_sub4_unnormalised \
  grassmann_pre_all_learned_sub4_linear=study/grassmann_pre_all_learned_sub4_linear
STAGE6_BEST ?=
STAGE6_CLOSERS ?= $(if $(STAGE6_BEST),$(STAGE6_BEST)_attn3=study/$(STAGE6_BEST)$(comma)stage6/attn3 \
  $(STAGE6_BEST)_zconv4=study/$(STAGE6_BEST)$(comma)stage6/zconv4)
STAGE6_DIR ?= results/stage6
stage6:
	$(MAKE) stage5-runs S5_SEEDS="42 43 44" S5_ARMS="$(STAGE6_PAIRINGS)" $(STAGE6_VARS)
	$(MAKE) stage5-runs S5_SEEDS="42 43 44" S5_ARMS="$(STAGE6_CLOSERS)" $(STAGE6_VARS)
	$(PY) compare.py $(STAGE6_DIR)/runs/* --out $(STAGE6_DIR)
STAGE6_VARS = STAGE5_DIR=$(STAGE6_DIR) S5_OUT=$(OUT)/stage6 S5_PROTOCOL=config/stage6/protocol.py S5_DTYPE=float32 \
  STAGE5_MACHINE=cpu/float32

# your own arms (docs/variants.md): ARMS="NAME=CONFIG[,CONFIG...]" under config/, beside ARM_BASELINES, one epoch
# each at ARM_SEEDS with stage 6's float32 protocol, every run of the table on this kind of machine (ARMS_MACHINE:
# cuda/float32 on a GPU); resumable like stage 5, then compare.py's table in ARMS_DIR/results.md
ARMS ?=
ARM_BASELINES ?= attention_post=study/attention_post grassmann_pre_all_learned_sub4=study/grassmann_pre_all_learned_sub4
ARM_SEEDS ?= 42 43 44
ARMS_DIR ?= results/arms
ARMS_MACHINE ?= cpu/float32
arms:
	$(if $(strip $(ARMS)),,@echo 'make: name your arms: make arms ARMS="NAME=CONFIG[,CONFIG...]" (docs/variants.md)' >&2 && exit 2)
	$(MAKE) stage5-runs S5_SEEDS="$(ARM_SEEDS)" S5_ARMS="$(ARM_BASELINES) $(ARMS)" STAGE5_DIR=$(ARMS_DIR) S5_OUT=$(OUT)/arms \
	  S5_PROTOCOL=config/stage6/protocol.py S5_DTYPE=float32 STAGE5_MACHINE=$(ARMS_MACHINE)
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

.PHONY: test train reproduce reproduce-paper reproduce-seed study stage4 stage5 stage5-reproduce stage5-runs stage6 arms recipes
