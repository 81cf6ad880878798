# Study arm grassmann_pre_all_learned_sub4_unnormalised (stage 5, a control): grassmann_pre_all_learned_sub4
# with step 4 skipped (pairing = 'unnormalised': z_t ∧ z_{t-Δ} as it is, no longer a point of Gr(2, r)):
# what the normalisation adds; 12,641,188 parameters, as the sub4 arm (GRASSMANN.md, "Stage-5 controls").
# python train.py config/study/protocol.py config/study/grassmann_pre_all_learned_sub4_unnormalised.py --seed=42
out_dir = 'out/study/grassmann_pre_all_learned_sub4_unnormalised'
wandb_run_name = 'study-grassmann_pre_all_learned_sub4_unnormalised'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
norm = 'pre'
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'
lag_weights = 'learned'
n_subspaces = 4
reduced_dim = 16
pairing = 'unnormalised'
