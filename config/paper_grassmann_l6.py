# The paper's 6-layer setting, Grassmann side, with the lags its table lists: one per layer,
# {1, 2, 4, 8, 12, 16}. Otherwise as paper_attention_l6.py; 12,607,168 parameters.
# python train.py config/paper_grassmann_l6.py
out_dir = 'out-paper-grassmann-l6'
wandb_run_name = 'paper-grassmann-l6'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'layer'
