# Stage 5, longer training (results/stage5/): the paper's 30-epoch schedule in honest units, stopped 3
# evaluations (epochs) after the best validation loss. Put it after the protocol and the arm's files
# (it undoes the protocol's one epoch); resumable across sessions with --init_from=resume.
# python train.py config/study/protocol.py config/study/attention_post.py config/stage5/long.py --seed=42
epochs = 30
patience = 3
