# Study arm attention_pre: the Transformer baseline, pre-norm; 12,585,472 parameters.
# The paper's units: bert-base-uncased WordPiece (30,522, unpadded), 6 layers, d 256, block 128, batch 32.
# python train.py config/study/protocol.py config/study/attention_pre.py --seed=42
out_dir = 'out/study/attention_pre'
wandb_run_name = 'study-attention_pre'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'attention'
norm = 'pre'
