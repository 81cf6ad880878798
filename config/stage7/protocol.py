# Stage 7's protocol (results/stage7/): each model at its best epoch. The study's settings (lr 1e-3, a
# 200-iteration warmup, weight decay 0.01 on matrices, clip 1.0, dropout 0.1: train.py's defaults) with the
# paper's 30-epoch cosine schedule, evaluated once per epoch on the whole validation split and stopped 2
# epochs after the best (the best weights' test perplexity at the end), in bf16 autocast on a CPU with fast
# bf16 (AMX or AVX-512 BF16). Eager or compiled as results/stage7/compile.json decided on the first CPU that
# ran the table (make stage7 passes it as --compile). Put it before the arm's files.
# python train.py config/stage7/protocol.py config/study/attention_post.py --seed=42 --compile=False
epochs = 30
eval_interval = 0
patience = 2
log_interval = 50
dtype = 'bfloat16'
