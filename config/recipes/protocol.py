# The recipe runs' protocol (results/recipes/README.md): one epoch, eager, the dtype that is fast on this
# machine (the seed's fp16 is for GPUs). Put it after the model's and the factors' files.
# python train.py config/seed/attention.py config/recipes/init_normal.py config/recipes/protocol.py --seed=42
epochs = 1
compile = False
log_interval = 50
dtype = 'auto'
