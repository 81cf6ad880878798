# Stage 6 (GRASSMANN.md, "Stage-6 arms"): a hybrid, the block of index 3 counting from 0 (the fourth of six)
# as causal attention, every other block the arm's own Grassmann mixer. Not attention-free: every table names
# it a hybrid. Put it after the arm's file.
# python train.py config/stage6/protocol.py config/study/grassmann_pre_all_learned_sub4.py config/stage6/attn3.py
attn_layers = (3,)
