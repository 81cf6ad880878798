# Study arm grassmann_pre_all_learned_sub4_linear (stage 5, a control): grassmann_pre_all_learned_sub4 without
# its geometry (pairing = 'linear': g_t = W_lin [z_t; w̄_t] per subspace, a gated short causal convolution over
# the same lags), at r = 45 so that it spends the same parameters: 12,635,740 (-5,448 on the sub4 arm's).
# python train.py config/study/protocol.py config/study/grassmann_pre_all_learned_sub4_linear.py --seed=42
out_dir = 'out/study/grassmann_pre_all_learned_sub4_linear'
wandb_run_name = 'study-grassmann_pre_all_learned_sub4_linear'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
norm = 'pre'
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'
lag_weights = 'learned'
n_subspaces = 4
reduced_dim = 45
pairing = 'linear'
