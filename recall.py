"""
Multi-query associative recall (MQAR; Zoology, arXiv 2312.04927, section 3; GRASSMANN.md, "Recall: what
perplexity hides"): can a mixer recall what its context said earlier? Each sequence of seq_len tokens
opens with n_pairs key-value pairs; later each key appears once more, and the model must predict the
value that followed it. Only those targets are scored. The sequences are generated on the fly from
seeds (the held-out ones from seeds no training batch uses), and the model is model.py's GPT with any
mixer option: a change to the model shows up here unchanged.

Usage:
    python recall.py --mixer=attention --seq_len=64 --n_pairs=8 --out_dir=out/recall/attention
    python recall.py --mixer=grassmann --norm=pre --pairing=unnormalised --lag_weights=learned --n_subspaces=4
    python recall.py config/recall/MY_ARM.py --n_pairs=16     # config files as train.py's, then --key=value
    python recall.py --help                                  # every key with its default

Writes out_dir/results.json: the config, the held-out accuracy (every scored target) and the fraction
of sequences with every target right, per evaluation, the code's commit, the machine, the dtype and
the wall time.
"""
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict

import numpy as np
import torch

from checkpoints import write_atomic
from configurator import code_version, configure
from hardware import device_name, pick
from model import GPT, GPTConfig

# -----------------------------------------------------------------------------
# default config values: a Zoology-sized task and model (2 layers, no dropout)
out_dir = 'out/recall'
seed = 42
# the task
vocab_size = 8192  # V: keys from 1 .. V/2 - 1, values from V/2 .. V - 1, 0 the filler
seq_len = 64  # T
n_pairs = 8  # D key-value pairs, each key queried once
power_a = 0.01  # the queries' slots: P(slot s) proportional to (s + 1)^(power_a - 1), as Zoology draws them
eval_examples = 1000  # held-out sequences, from seeds no training batch uses
# the model (GPTConfig's fields; attention has n_head heads)
n_layer = 2
n_head = 2
n_embd = 128
dropout = 0.0
bias = True
mixer = 'attention'
norm = 'pre'
reduced_dim = 32
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'
n_subspaces = 1
lag_weights = 'mean'
partners = 'none'
n_partners = 3
pairing = 'wedge'
p_norm = 'none'
attn_window = 0
attn_layers = ()
z_conv = 0
# training: AdamW with a linear warmup and cosine decay, as train.py
batch_size = 64
max_iters = 2000
learning_rate = 1e-3
warmup_iters = 100
weight_decay = 0.1
grad_clip = 1.0
eval_interval = 250
device = 'auto'
dtype = 'float32'
# -----------------------------------------------------------------------------
config_keys = [k for k, v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str, tuple))]
defaults = {k: globals()[k] for k in config_keys}


def mqar(n, seq_len, n_pairs, vocab_size, seed, power_a=0.01):
    """n MQAR sequences: inputs (n, T) and targets (n, T), -1 where nothing is scored. Positions 0 .. 2D - 1
    hold k_1 v_1 ... k_D v_D (keys without replacement from 1 .. V/2 - 1, values without replacement from
    V/2 .. V - 1); the rest is (T - 2D) // 2 slots of two positions, each key again in a slot of its own,
    drawn with P(slot s) ∝ (s + 1)^(a - 1), its value after it, 0 everywhere else. The target at a queried
    key is its value."""
    T, D, V = seq_len, n_pairs, vocab_size
    if T < 4 * D or V // 2 - 1 < D or D < 1:
        raise ValueError(f"seq_len={T}, n_pairs={D}, vocab_size={V}: MQAR needs seq_len >= 4 x n_pairs (the pairs, then "
                         f"a slot for each query) and at least n_pairs keys in 1 .. vocab_size/2 - 1")
    rng = np.random.default_rng(seed)
    slots = (T - 2 * D) // 2
    p = np.arange(1, slots + 1) ** (power_a - 1.0)
    p /= p.sum()
    x = np.zeros((n, T), dtype=np.int64)
    y = np.full((n, T), -1, dtype=np.int64)
    for i in range(n):
        keys = rng.choice(np.arange(1, V // 2), D, replace=False)
        values = rng.choice(np.arange(V // 2, V), D, replace=False)
        x[i, 0:2 * D:2], x[i, 1:2 * D:2] = keys, values
        where = 2 * D + 2 * rng.choice(slots, D, replace=False, p=p)  # each query's key position
        x[i, where], x[i, where + 1], y[i, where] = keys, values, values
    return torch.from_numpy(x), torch.from_numpy(y)


def train_seed(seed, it):
    """The seed of training batch `it`: even numbers, so that no held-out seed (odd) is ever a training one."""
    return 2 * (seed * 1_000_003 + it)


def held_out_seed(seed):
    """The seed of the held-out sequences: odd, so never a training batch's."""
    return 2 * seed + 1


@torch.no_grad()
def accuracy(model, x, y, batch_size, ctx):
    """The fraction of scored targets predicted exactly (argmax), and of sequences with every one right."""
    model.eval()
    right, scored, full = 0, 0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        with ctx:
            logits, _ = model(xb, yb)
        hit = (logits.argmax(-1) == yb) | (yb < 0)
        right += int((hit & (yb >= 0)).sum())
        scored += int((yb >= 0).sum())
        full += int(hit.all(-1).sum())
    model.train()
    return right / scored, full / len(x)


def model_config(config):
    """The GPTConfig of a run: every model key of the config, block_size the sequence length."""
    keys = {k: config[k] for k in GPTConfig.__dataclass_fields__ if k in config and k != 'block_size'}
    return GPTConfig(**keys, block_size=config['seq_len'])


def main(config):
    c = type('Config', (), config)
    dev, _ = pick(c.device, c.dtype)
    ctx = nullcontext() if c.dtype == 'float32' else torch.autocast(dev.split(':')[0], dtype=getattr(torch, c.dtype))
    torch.manual_seed(c.seed)
    gpt = model_config(config)
    model = GPT(gpt).to(dev)
    optimizer = model.configure_optimizers(c.weight_decay, c.learning_rate, (0.9, 0.999), dev.split(':')[0])
    held_x, held_y = mqar(c.eval_examples, c.seq_len, c.n_pairs, c.vocab_size, held_out_seed(c.seed), c.power_a)
    held_x, held_y = held_x.to(dev), held_y.to(dev)
    os.makedirs(c.out_dir, exist_ok=True)
    print(f"{gpt.mixer} model, {model.num_params():,} parameters; MQAR T={c.seq_len} D={c.n_pairs} V={c.vocab_size}; "
          f"{c.dtype} on {dev} ({device_name(dev)})")
    history, t0 = [], time.time()
    for it in range(c.max_iters):
        lr = c.learning_rate * min(1.0, (it + 1) / (c.warmup_iters + 1)) if it < c.warmup_iters else \
            0.5 * c.learning_rate * (1 + math.cos(math.pi * (it - c.warmup_iters) / max(1, c.max_iters - c.warmup_iters)))
        for group in optimizer.param_groups:
            group['lr'] = lr
        x, y = (t.to(dev) for t in mqar(c.batch_size, c.seq_len, c.n_pairs, c.vocab_size, train_seed(c.seed, it), c.power_a))
        with ctx:
            _, loss = model(x, y)
        loss.backward()
        if c.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if (it + 1) % c.eval_interval == 0 or it + 1 == c.max_iters:
            acc, full = accuracy(model, held_x, held_y, c.batch_size, ctx)
            history.append({'iter': it + 1, 'train_loss': loss.item(), 'accuracy': acc, 'sequences_right': full,
                            'elapsed_s': time.time() - t0})
            print(f"iter {it + 1}/{c.max_iters} | loss {loss.item():.4f} | held-out accuracy {acc:.4f} | "
                  f"sequences right {full:.4f} | {time.time() - t0:.0f} s")
    results = {'config': config, 'model_args': asdict(gpt), 'n_params': model.num_params(), 'history': history,
               'accuracy': history[-1]['accuracy'], 'sequences_right': history[-1]['sequences_right'],
               'code': code_version(), 'device': dev, 'device_name': device_name(dev), 'dtype': c.dtype,
               'torch': torch.__version__, 'wall_time_s': time.time() - t0}
    write_atomic(os.path.join(c.out_dir, 'results.json'), lambda f: f.write(json.dumps(results, indent=2).encode()))
    return results


if __name__ == '__main__':
    try:
        config = configure(defaults, sys.argv[1:], script=__file__)
        mqar(1, config['seq_len'], config['n_pairs'], config['vocab_size'], 0)  # an impossible task: refused before anything runs
        for key in ('max_iters', 'batch_size', 'eval_interval', 'eval_examples'):
            if not config[key] >= 1:
                raise ValueError(f"{key}={config[key]!r}: allowed values are integers >= 1")
        model_config(config)
    except (ValueError, TypeError) as e:
        sys.exit(f"recall.py: error: {e}")
    main(config)
