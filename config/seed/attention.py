# The seed reproduction's recipe (the Hydra reproduction, 238.71 vs 321.05 published), Transformer side:
# PyTorch's default init (token and position tables N(0, 1), the tied head N(0, 1), Linears
# kaiming-uniform), AdamW lr 1e-3, betas (0.9, 0.999), weight decay 0.01 on every parameter, no warmup,
# cosine per step to 0, clip 1.0, dropout 0.1, fp16 with a grad scaler, batch 32, block 128, 30 epochs,
# post-norm; BERT WordPiece (GRASSMANN.md, "Units and the seed's recipe"). It trained on the raw variant:
# python prepare.py --tokenizer bert; python train.py config/seed/attention.py
# fp16 is for GPUs; on a CPU add --dtype=auto (bf16 where it is fast, else float32)
out_dir = 'out-seed-attention'
wandb_run_name = 'seed-attention'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'attention'
norm = 'post'
init = 'torch'
learning_rate = 1e-3
beta1 = 0.9
beta2 = 0.999
weight_decay = 0.01
weight_decay_on = 'all'
warmup_iters = 0
decay_lr = True
min_lr = 0.0
grad_clip = 1.0
dropout = 0.1
dtype = 'float16'
batch_size = 32
block_size = 128
epochs = 30
