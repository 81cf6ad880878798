# Study arm grassmann_post_layer: the paper's post-norm flow, one lag per layer as its tables list; 12,607,168 parameters.
# The paper's units: bert-base-uncased WordPiece (30,522, unpadded), 6 layers, d 256, block 128, batch 32.
# python train.py config/study/protocol.py config/study/grassmann_post_layer.py --seed=42
out_dir = 'out/study/grassmann_post_layer'
wandb_run_name = 'study-grassmann_post_layer'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
norm = 'post'
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'layer'
