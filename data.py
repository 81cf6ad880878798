"""
The data protocol of the spec, shared by training and evaluation. A split's token file is cut into
contiguous, non-overlapping blocks of block_size + 1 tokens (inputs: the first block_size, targets: the
last block_size). Training visits the blocks in a shuffled order seeded by (seed, epoch); evaluation
is the token-weighted mean cross-entropy over every target token of every full block, in order.

Usage:
    data = load_split('data/wikitext2', 'val')
    val_loss = evaluate(model, data, block_size=128, batch_size=32, device='cpu')
"""
import json
import os
from contextlib import nullcontext

import numpy as np
import torch
import torch.distributed as dist


def load_meta(data_dir):
    path = os.path.join(data_dir, 'meta.json')
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: run `python prepare.py --out {data_dir}` first")
    with open(path) as f:
        return json.load(f)


def load_split(data_dir, split):
    return np.memmap(os.path.join(data_dir, f'{split}.bin'), dtype=np.uint16, mode='r')


def num_blocks(data, block_size):
    return len(data) // (block_size + 1)


def epoch_order(n_blocks, epoch, seed):
    """The shuffled block order of one epoch: the same for every rank, and again after a resume."""
    return np.random.default_rng([seed, epoch]).permutation(n_blocks)


def get_blocks(data, ids, block_size, device='cpu'):
    """Inputs and targets (len(ids), block_size) of the blocks numbered ids."""
    rows = data[np.asarray(ids)[:, None] * (block_size + 1) + np.arange(block_size + 1)]
    rows = torch.from_numpy(rows.astype(np.int64))
    x, y = rows[:, :-1], rows[:, 1:]
    if torch.device(device).type == 'cuda':
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


@torch.no_grad()
def evaluate(model, data, block_size, batch_size, device, ctx=nullcontext(), rank=0, world_size=1):
    """Mean cross-entropy over every target token of every full block of `data` (exp of it: perplexity).
    Under DDP each rank takes every world_size-th block and the sums are reduced across ranks."""
    training = model.training
    model.eval()
    ids = np.arange(rank, num_blocks(data, block_size), world_size)
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of losses, tokens)
    for i in range(0, len(ids), batch_size):
        x, y = get_blocks(data, ids[i:i + batch_size], block_size, device)
        with ctx:
            _, loss = model(x, y)
        total += torch.stack([loss.double() * y.numel(), torch.tensor(y.numel(), dtype=torch.float64, device=device)])
    if world_size > 1:
        dist.all_reduce(total)
    model.train(training)
    return (total[0] / total[1]).item()
