# The paper's 12-layer setting, Transformer side: bert-base-uncased WordPiece (30,522), d=256,
# 12 layers, block 256, batch 16, 30 epochs. Data: python prepare.py --tokenizer bert
# python train.py config/paper_attention_l12.py
out_dir = 'out-paper-attention-l12'
wandb_run_name = 'paper-attention-l12'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'attention'
n_layer = 12
block_size = 256
batch_size = 16
