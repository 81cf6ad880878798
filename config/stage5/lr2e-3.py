# Stage 5, the learning rate (results/stage5/): the peak learning rate 2e-3 instead of 1e-3, the rest of the
# shared protocol as it is (a 200-iteration warmup, cosine to 0). Put it after the arm's file.
# python train.py config/study/protocol.py config/study/attention_post.py config/stage5/lr2e-3.py --seed=42
learning_rate = 2e-3
