# Our recipe as it was before the shared protocol was settled (train.py's warmup_iters = 200 since):
# no warmup. The recipe runs "ours" and "ours, lr 3e-4" ran this way (results/recipes/).
warmup_iters = 0
