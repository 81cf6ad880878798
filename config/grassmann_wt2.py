# The Causal Grassmann model (arXiv 2512.19428): 6 layers, d=256, block 128, batch 32, 30 epochs on WikiText-2 (GPT-2 BPE).
# Everything else is train.py's defaults, which are the seed reproduction's protocol (the paper states
# no optimizer): AdamW lr 1e-3, weight decay 0.01, betas (0.9, 0.999), clip 1.0, cosine decay to 0 with
# no warmup, dropout 0.1, seed 42, post-norm. attention_wt2.py differs only in the lines below.
# python train.py config/grassmann_wt2.py
out_dir = 'out-grassmann-wt2'
wandb_run_name = 'grassmann-wt2'
mixer = 'grassmann'
reduced_dim = 32
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'  # every layer every lag, as in the paper's §3.2
