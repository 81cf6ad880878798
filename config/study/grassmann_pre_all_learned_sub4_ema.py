# Study arm grassmann_pre_all_learned_sub4_ema (stage 4): the best arm so far, grassmann_pre_all_learned_sub4,
# with partners='ema': K = 3 running means of z_{<t} per layer and subspace, decays learned per layer (τ initialised at 4, 16, 64),
# each paired with z_t like a lag (GRASSMANN.md, "Stage-4 variants"); 12,645,832 parameters (+0.48% on the Transformer's).
# The paper's units: bert-base-uncased WordPiece (30,522, unpadded), 6 layers, d 256, block 128, batch 32.
# python train.py config/study/protocol.py config/study/grassmann_pre_all_learned_sub4_ema.py --seed=42
out_dir = 'out/study/grassmann_pre_all_learned_sub4_ema'
wandb_run_name = 'study-grassmann_pre_all_learned_sub4_ema'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
norm = 'pre'
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'
lag_weights = 'learned'
n_subspaces = 4
reduced_dim = 16
partners = 'ema'
n_partners = 3
