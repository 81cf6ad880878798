"""
The data protocol of the spec, shared by training and evaluation. A split's token file is cut into
contiguous, non-overlapping blocks of block_size + 1 tokens (inputs: the first block_size, targets: the
last block_size). Training visits the blocks in a shuffled order seeded by (seed, epoch); evaluation
is the token-weighted mean cross-entropy over every target token of every full block, in order, and
the same over its recall tokens (a bigram the window has already shown) and over the others.

With an eval stride below block_size the same targets are scored, each with more context: the
targets of a block are taken `stride` at a time, each chunk by a window of block_size inputs that ends
at the chunk, reaching back into earlier blocks, so that every scored token sees at least
block_size - stride tokens before it (fewer only at the very start of the split). A stride equal to
block_size is exactly the block protocol.

Usage:
    data = load_split('data/wikitext2', 'val')
    val = evaluate(model, data, block_size=128, batch_size=32, device='cpu')  # val['loss'], val['recall_loss'], ...
    metrics(val, load_meta('data/wikitext2')['splits']['val'])  # ppl, bits per byte, word ppl, each group's ppl
"""
import hashlib
import json
import math
import os
from contextlib import nullcontext

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F


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


def recall_targets(rows):
    """(B, T) bool of windows' tokens rows (B, T + 1): target t (rows[:, t + 1]) is a recall token when its
    bigram (rows[:, t], rows[:, t + 1]) already occurred at an earlier position of the same window, which
    the model has read (GRASSMANN.md, "Recall: what perplexity hides"). A stable sort puts each bigram's
    first occurrence before its repeats, so this is O(T log T) per window, not O(T²)."""
    bigrams = rows[:, :-1].astype(np.int64) * 65536 + rows[:, 1:]  # (B, T): uint16 ids, one int64 per pair
    order = np.argsort(bigrams, axis=1, kind='stable')
    sorted_ = np.take_along_axis(bigrams, order, axis=1)
    repeat = np.zeros(bigrams.shape, dtype=bool)
    repeat[:, 1:] = sorted_[:, 1:] == sorted_[:, :-1]
    out = np.empty_like(repeat)
    np.put_along_axis(out, order, repeat, axis=1)
    return out


@torch.no_grad()
def evaluate(model, data, block_size, batch_size, device, ctx=nullcontext(), rank=0, world_size=1, stride=None):
    """Mean cross-entropy (nats) over every target token of every full block of `data`, each scored
    once; `stride` < block_size gives each more context (see above). Under DDP each rank takes every
    world_size-th window and the sums are reduced across ranks. Returns {'loss', 'tokens'} and the same
    of the recall tokens (recall_targets) and of the others ('recall_loss', ..., 'other_tokens'): the
    overall loss is the model's own, each group's the mean of its tokens' losses (None for no tokens)."""
    training = model.training
    model.eval()
    windows = eval_windows(len(data), block_size, stride or block_size)[rank::world_size]
    # every batch the same shape, so that a compiled model builds one graph: the last batch is filled
    # up with copies of the first window that score nothing (first == last)
    pad = -len(windows) % batch_size
    windows = np.concatenate([windows, np.repeat([[0, 0, 0]], pad, axis=0)]) if len(windows) else windows
    cols = np.arange(block_size + 1)
    # (sum of losses, tokens) of all scored targets, then of the recall tokens: read once at the end
    total = torch.zeros(4, dtype=torch.float64, device=device)
    for i in range(0, len(windows), batch_size):
        start, first, last = windows[i:i + batch_size].T
        tokens = data[start[:, None] + cols]
        rows = torch.from_numpy(tokens.astype(np.int64))
        scored = torch.from_numpy((cols[None, :-1] >= first[:, None]) & (cols[None, :-1] < last[:, None]))
        recall = (torch.from_numpy(recall_targets(tokens)) & scored).to(device)
        x, y = rows[:, :-1].to(device), rows[:, 1:].masked_fill(~scored, -1).to(device)  # -1: not scored
        with ctx:
            logits, loss = model(x, y)
        # only the recall tokens' losses again (~9% of WikiText-2's): the others' sum is the rest
        recall_sum = F.cross_entropy(logits[recall].float(), y[recall], reduction='sum').double()
        n, r = float(scored.sum()), recall.sum().double()
        total += torch.stack([loss.double() * n, torch.tensor(n, dtype=torch.float64, device=device), recall_sum, r])
    if world_size > 1:
        dist.all_reduce(total)
    model.train(training)
    loss_sum, n, recall_sum, r = total.tolist()
    return {'loss': loss_sum / n, 'tokens': int(n), 'recall_loss': recall_sum / r if r else None, 'recall_tokens': int(r),
            'other_loss': (loss_sum - recall_sum) / (n - r) if n > r else None, 'other_tokens': int(n - r)}


def metrics(result, split):
    """Token perplexity, bits per byte and word-level perplexity of evaluate's mean loss (nats per token)
    on a split described by meta.json: the mean loss stands for every token of the split, so its total
    is loss x tokens, spread over the split's UTF-8 bytes or whitespace-separated words. The recall
    tokens and the others keep their loss, perplexity and count."""
    loss = result['loss']
    nats = loss * split['tokens']
    groups = {f'{g}_{k}': v for g in ('recall', 'other') for k, v in (
        ('loss', result[f'{g}_loss']), ('ppl', None if result[f'{g}_loss'] is None else math.exp(result[f'{g}_loss'])),
        ('tokens', result[f'{g}_tokens']))}
    return {'loss': loss, 'ppl': math.exp(loss), 'bpb': nats / math.log(2) / split['bytes'],
            'word_ppl': math.exp(nats / split['words']), **groups}
