# The paper's 6-layer setting, Grassmann side, with its second lag schedule: one per layer,
# {1, 2, 4, 8, 8, 8}. Otherwise as paper_grassmann_l6.py.
# python train.py config/paper_grassmann_l6_lags888.py
out_dir = 'out-paper-grassmann-l6-lags888'
wandb_run_name = 'paper-grassmann-l6-lags888'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
lags = (1, 2, 4, 8, 8, 8)
lag_schedule = 'layer'
