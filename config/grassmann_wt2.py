# The Causal Grassmann model (arXiv 2512.19428): 6 layers, block 128, batch 32, 30 epochs on WikiText-2 (GPT-2 BPE).
# Optimizer and schedule are the seed reproduction's (the paper states none), shared with
# attention_wt2.py key for key: only the mixer's keys and the names differ.
# python train.py config/grassmann_wt2.py
out_dir = 'out-grassmann-wt2'
wandb_run_name = 'grassmann-wt2'
mixer = 'grassmann'
reduced_dim = 32
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'  # every layer every lag, as in the paper's §3.2

dataset = 'wikitext2'
n_layer = 6
n_head = 4
n_embd = 256
block_size = 128
batch_size = 32
epochs = 30
dropout = 0.1
norm = 'post'

# AdamW, cosine decay to 0 over all iterations, no warmup
learning_rate = 1e-3
weight_decay = 0.01
beta1, beta2 = 0.9, 0.999
grad_clip = 1.0
warmup_iters = 0
min_lr = 0.0
seed = 42
