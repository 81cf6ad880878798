# Our recipe as it was before issue 22 settled the shared protocol (train.py's warmup_iters = 200 since):
# no warmup. The recipe runs "ours" and "ours, lr 3e-4" ran this way (results/recipes/).
warmup_iters = 0
