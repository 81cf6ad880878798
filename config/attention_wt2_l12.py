# The causal Transformer baseline: the paper's larger setting, 12 layers, block 256, batch 16, 30 epochs; the
# rest as in attention_wt2.py (train.py's defaults, shared with grassmann_wt2_l12.py).
# python train.py config/attention_wt2_l12.py
out_dir = 'out-attention-wt2-l12'
wandb_run_name = 'attention-wt2-l12'
mixer = 'attention'
n_layer = 12
block_size = 256
batch_size = 16
