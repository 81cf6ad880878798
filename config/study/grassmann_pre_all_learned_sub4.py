# Study arm grassmann_pre_all_learned_sub4: the stage-2 changes that helped at one seed, together:
# learned lag weights over every lag in every layer, and four subspaces of r = 16; 12,641,188 parameters.
# The paper's units: bert-base-uncased WordPiece (30,522, unpadded), 6 layers, d 256, block 128, batch 32.
# python train.py config/study/protocol.py config/study/grassmann_pre_all_learned_sub4.py --seed=42
out_dir = 'out/study/grassmann_pre_all_learned_sub4'
wandb_run_name = 'study-grassmann_pre_all_learned_sub4'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
norm = 'pre'
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'
lag_weights = 'learned'
n_subspaces = 4
reduced_dim = 16
