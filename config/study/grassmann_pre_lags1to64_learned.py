# Study arm grassmann_pre_lags1to64_learned: lags (1, 2, 4, 8, 16, 32, 64) in every layer, learned weights; 12,617,962 parameters.
# Stage 2, on top of stage 1's best Grassmann arm (grassmann_pre_layer). The paper's units: bert-base-uncased
# WordPiece (30,522, unpadded), 6 layers, d 256, block 128, batch 32.
# python train.py config/study/protocol.py config/study/grassmann_pre_lags1to64_learned.py --seed=42
out_dir = 'out/study/grassmann_pre_lags1to64_learned'
wandb_run_name = 'study-grassmann_pre_lags1to64_learned'
dataset = 'wikitext2_bert'
vocab_size = 30522
mixer = 'grassmann'
norm = 'pre'
lags = (1, 2, 4, 8, 16, 32, 64)
lag_schedule = 'all'
lag_weights = 'learned'
