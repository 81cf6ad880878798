# The Causal Grassmann model (arXiv 2512.19428): the paper's larger setting, 12 layers, block 256, batch 16, 30 epochs; the
# rest as in grassmann_wt2.py (train.py's defaults, shared with attention_wt2_l12.py).
# python train.py config/grassmann_wt2_l12.py
out_dir = 'out-grassmann-wt2-l12'
wandb_run_name = 'grassmann-wt2-l12'
mixer = 'grassmann'
n_layer = 12
block_size = 256
batch_size = 16
reduced_dim = 32
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'
