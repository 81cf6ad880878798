# A CPU smoke run of the Grassmann model: a tiny model, 100 iterations, two full evaluations; about a
# minute on 2 CPU cores. Shares every key but the mixer's with attention_smoke.py.
# python train.py config/grassmann_smoke.py
out_dir = 'out-grassmann-smoke'
wandb_run_name = 'grassmann-smoke'
mixer = 'grassmann'
reduced_dim = 16

n_layer = 2
n_head = 4
n_embd = 64
block_size = 64
batch_size = 16
max_iters = 100
eval_interval = 50
log_interval = 10
learning_rate = 3e-3
warmup_iters = 10
compile = False  # compiling costs more than these 100 iterations on a CPU
