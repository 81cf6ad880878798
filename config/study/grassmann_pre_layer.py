# Study arm grassmann_pre_layer: pre-norm with a residual around the mixer, one lag per layer; 12,607,168 parameters.
# The paper's units: bert-base-uncased WordPiece (30,522, unpadded), 6 layers, d 256, block 128, batch 32.
# python train.py config/study/protocol.py config/study/grassmann_pre_layer.py --seed=42
out_dir = 'out/study/grassmann_pre_layer'
wandb_run_name = 'study-grassmann_pre_layer'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
norm = 'pre'
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'layer'
