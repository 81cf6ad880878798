# Stage 6 (e), the learning rate (results/stage6/): the peak learning rate 2e-3 instead of 1e-3, the rest of the
# shared protocol as it is (a 200-iteration warmup, cosine to 0). Put it after the arm's file.
# python train.py config/stage6/protocol.py config/study/attention_post.py config/stage6/lr2e-3.py --seed=42
learning_rate = 2e-3
