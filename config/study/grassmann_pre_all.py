# Study arm grassmann_pre_all: pre-norm with a residual around the mixer, every lag in every layer; 12,607,168 parameters.
# The paper's units: bert-base-uncased WordPiece (30,522, unpadded), 6 layers, d 256, block 128, batch 32.
# python train.py config/study/protocol.py config/study/grassmann_pre_all.py --seed=42
out_dir = 'out/study/grassmann_pre_all'
wandb_run_name = 'study-grassmann_pre_all'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
norm = 'pre'
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'
