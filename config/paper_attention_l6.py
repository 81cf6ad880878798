# The paper's 6-layer setting (arXiv 2512.19428), Transformer side: bert-base-uncased WordPiece
# (30,522 entries, unpadded as the paper counts), d=256, block 128, batch 32, 30 epochs, and the
# rest of train.py's defaults; 12,585,472 parameters. Data: python prepare.py --tokenizer bert
# python train.py config/paper_attention_l6.py
out_dir = 'out-paper-attention-l6'
wandb_run_name = 'paper-attention-l6'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'attention'
