# The paper's 12-layer setting, Grassmann side, with the lags its table lists: one per layer,
# (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16). Otherwise as paper_attention_l12.py.
# python train.py config/paper_grassmann_l12.py
out_dir = 'out-paper-grassmann-l12'
wandb_run_name = 'paper-grassmann-l12'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
n_layer = 12
block_size = 256
batch_size = 16
lags = (1, 1, 2, 2, 4, 4, 8, 8, 12, 12, 16, 16)
lag_schedule = 'layer'
