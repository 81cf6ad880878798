"""
The data protocol of the spec, shared by training and evaluation. A split's token file is cut into
contiguous, non-overlapping blocks of block_size + 1 tokens (inputs: the first block_size, targets: the
last block_size). Training visits the blocks in a shuffled order seeded by (seed, epoch); evaluation
is the token-weighted mean cross-entropy over every target token of every full block, in order.

With an eval stride below block_size the same targets are scored, each with more context: the
targets of a block are taken `stride` at a time, each chunk by a window of block_size inputs that ends
at the chunk, reaching back into earlier blocks, so that every scored token sees at least
block_size - stride tokens before it (fewer only at the very start of the split). A stride equal to
block_size is exactly the block protocol.

Usage:
    data = load_split('data/wikitext2', 'val')
    val_loss = evaluate(model, data, block_size=128, batch_size=32, device='cpu')
    metrics(val_loss, load_meta('data/wikitext2')['splits']['val'])  # ppl, bits per byte, word ppl
"""
import hashlib
import json
import math
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
        try:
            return json.load(f)
        except ValueError as e:
            raise ValueError(f"{path} is not valid JSON ({e}): prepare the folder again with "
                             f"`python prepare.py --out {data_dir}` and the options that made it") from None


def load_split(data_dir, split, meta=None):
    """A split's token ids, memory-mapped. With meta (meta.json), a file that is missing, cut short or
    from another preparation stops here with what to do, rather than training on the wrong tokens and
    reporting bits per byte and word perplexity of a split it did not read."""
    path = os.path.join(data_dir, f'{split}.bin')
    size = os.path.getsize(path) if os.path.isfile(path) else None
    expected = meta['splits'][split].get('tokens') if meta and split in meta.get('splits', {}) else None
    if size is None or size == 0 or size % 2 or expected is not None and size // 2 != expected:
        found = 'not found' if size is None else f"holds {size:,} bytes" + (
            f" ({size // 2:,} tokens)" if size % 2 == 0 else ', not whole 2-byte token ids')
        said = f", but {data_dir}/meta.json says {expected:,} tokens" if expected is not None and size is not None else ''
        units = f" ({meta.get('units', meta.get('tokenizer'))})" if meta else ''
        raise ValueError(f"{path} {found}{said}: the file is missing, cut short or from another preparation. "
                         f"Prepare the folder again: `python prepare.py --out {data_dir}` with the options that made it{units}")
    return np.memmap(path, dtype=np.uint16, mode='r')


def token_sha256(data_dir, split):
    """The SHA-256 of a split's token file as read: two runs saw the same tokens when theirs agree."""
    with open(os.path.join(data_dir, f'{split}.bin'), 'rb') as f:
        return hashlib.file_digest(f, 'sha256').hexdigest()


def num_blocks(data, block_size):
    return len(data) // (block_size + 1)


def epoch_order(n_blocks, epoch, seed):
    """The shuffled block order of one epoch: the same for every rank, and again after a resume."""
    return np.random.default_rng([seed, epoch]).permutation(n_blocks)


def gather_blocks(tokens, ids, block_size):
    """Inputs and targets (len(ids), block_size) of the blocks numbered ids (a tensor), gathered from the
    split's tokens (an int64 tensor) on whatever device both are: no host work and no copy per batch."""
    rows = tokens[ids[:, None] * (block_size + 1) + torch.arange(block_size + 1, device=ids.device)]
    return rows[:, :-1], rows[:, 1:]


def eval_windows(n_tokens, block_size, stride):
    """(start, first, last) of every evaluation window: inputs data[start:start+block_size], targets
    data[start+1:start+block_size+1], of which targets first..last-1 are scored."""
    windows = []
    for b0 in range(0, n_tokens // (block_size + 1) * (block_size + 1), block_size + 1):
        for c0 in range(0, block_size, stride):  # this chunk's targets: data[b0+1+c0 : b0+1+c1]
            c1 = min(c0 + stride, block_size)
            start = max(b0 + c1 - block_size, 0)
            windows.append((start, b0 + c0 - start, b0 + c1 - start))
    return np.array(windows, dtype=np.int64).reshape(-1, 3)


@torch.no_grad()
def evaluate(model, data, block_size, batch_size, device, ctx=nullcontext(), rank=0, world_size=1, stride=None):
    """Mean cross-entropy (nats) over every target token of every full block of `data`, each scored
    once; `stride` < block_size gives each more context (see above). Under DDP each rank takes every
    world_size-th window and the sums are reduced across ranks."""
    training = model.training
    model.eval()
    windows = eval_windows(len(data), block_size, stride or block_size)[rank::world_size]
    # every batch the same shape, so that a compiled model builds one graph: the last batch is filled
    # up with copies of the first window that score nothing (first == last)
    pad = -len(windows) % batch_size
    windows = np.concatenate([windows, np.repeat([[0, 0, 0]], pad, axis=0)]) if len(windows) else windows
    cols = np.arange(block_size + 1)
    total = torch.zeros(2, dtype=torch.float64, device=device)  # (sum of losses, tokens), read once at the end
    for i in range(0, len(windows), batch_size):
        start, first, last = windows[i:i + batch_size].T
        rows = torch.from_numpy(data[start[:, None] + cols].astype(np.int64))
        scored = torch.from_numpy((cols[None, :-1] >= first[:, None]) & (cols[None, :-1] < last[:, None]))
        x, y = rows[:, :-1].to(device), rows[:, 1:].masked_fill(~scored, -1).to(device)  # -1: not scored
        with ctx:
            _, loss = model(x, y)
        n = float(scored.sum())
        total += torch.stack([loss.double() * n, torch.tensor(n, dtype=torch.float64, device=device)])
    if world_size > 1:
        dist.all_reduce(total)
    model.train(training)
    return (total[0] / total[1]).item()


def metrics(loss, split):
    """Token perplexity, bits per byte and word-level perplexity of a mean loss (nats per token) on a
    split described by meta.json: the mean loss stands for every token of the split, so its total is
    loss x tokens, spread over the split's UTF-8 bytes or whitespace-separated words."""
    nats = loss * split['tokens']
    return {'loss': loss, 'ppl': math.exp(loss), 'bpb': nats / math.log(2) / split['bytes'],
            'word_ppl': math.exp(nats / split['words'])}
