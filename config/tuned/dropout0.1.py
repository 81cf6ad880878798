# Stage 4's regularisation grid: every model at its own best dropout from 0.1, 0.2, 0.3; put it after
# the model's file, e.g. python train.py config/study/attention_post.py config/tuned/dropout0.1.py
dropout = 0.1
