# The causal Transformer baseline: 12 layers, block 256, batch 16, 30 epochs on WikiText-2 (GPT-2 BPE).
# Optimizer and schedule are the seed reproduction's (the paper states none), shared with
# grassmann_wt2_l12.py key for key: only the mixer's keys and the names differ.
# python train.py config/attention_wt2_l12.py
out_dir = 'out-attention-wt2-l12'
wandb_run_name = 'attention-wt2-l12'
mixer = 'attention'

dataset = 'wikitext2'
n_layer = 12
n_head = 4
n_embd = 256
block_size = 256
batch_size = 16
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
