# Stage 6's protocol (results/stage6/): the study's (config/study/protocol.py) in float32, so that its runs are
# the same computation on any CPU, with or without fast bf16. Put it before the arm's files.
# python train.py config/stage6/protocol.py config/study/grassmann_pre_all_learned_sub4_linear.py --seed=42
epochs = 1
compile = False
log_interval = 50
dtype = 'float32'
