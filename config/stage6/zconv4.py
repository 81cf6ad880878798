# Stage 6 (GRASSMANN.md, "Stage-6 arms"): a causal depthwise convolution of width 4 on the reduced vectors z,
# identity at init, (4 + 1)·H·r more parameters per layer. Put it after the arm's file.
# python train.py config/stage6/protocol.py config/study/grassmann_pre_all_learned_sub4.py config/stage6/zconv4.py
z_conv = 4
