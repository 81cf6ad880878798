"""
recall.py: the MQAR generator against its definition (GRASSMANN.md, "Recall: what perplexity hides"),
its scoring, the refusals of impossible settings, and a mixer that cannot recall past its reach, by
construction.

Usage: python -m pytest -q test_recall.py
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from model import GPT, GPTConfig
from recall import accuracy, held_out_seed, mqar, train_seed

ROOT = os.path.dirname(os.path.abspath(__file__))


def test_mqar_follows_its_definition():
    T, D, V = 64, 8, 64
    x, y = mqar(300, T, D, V, seed=3)
    assert x.shape == y.shape == (300, T)
    for xs, ys in zip(x.tolist(), y.tolist()):
        keys, values = xs[0:2 * D:2], xs[1:2 * D:2]
        assert len(set(keys)) == D and all(1 <= k < V // 2 for k in keys)  # once each, from the keys' half
        assert len(set(values)) == D and all(V // 2 <= v < V for v in values)  # from the values' half
        query = xs[2 * D:]
        for k, v in zip(keys, values):  # each key once among the queries, in a slot (even offset), its value after it
            where = [2 * D + i for i, t in enumerate(query) if t == k]
            assert len(where) == 1 and (where[0] - 2 * D) % 2 == 0 and xs[where[0] + 1] == v
            assert ys[where[0]] == v  # the target after a queried key is the value that followed it
        scored = [t for t in range(T) if ys[t] != -1]
        assert len(scored) == D and all(t >= 2 * D and xs[t] in keys for t in scored)  # only the queried values
        assert set(query) <= set(keys) | set(values) | {0}  # the filler, 0, is never a key
    assert (x[:, 2 * D:] == 0).any()


def test_mqar_draws_its_slots_by_the_power_law():
    """One query per sequence, so that each draw is one slot: frequencies within 5 sigma of
    P(slot s) ∝ (s + 1)^(a - 1), for Zoology's a = 0.01 and for a = 1 (uniform)."""
    T, n = 64, 6000
    for a in (0.01, 1.0):
        x, y = mqar(n, T, 1, 64, seed=5, power_a=a)
        slots = ((y >= 0).float().argmax(1) - 2) // 2
        counts = np.bincount(slots.numpy(), minlength=(T - 2) // 2)
        p = np.arange(1, (T - 2) // 2 + 1) ** (a - 1.0)
        p /= p.sum()
        assert np.all(np.abs(counts - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1), (a, counts)
    assert counts[0] < 400 < np.bincount(((mqar(n, T, 1, 64, seed=5)[1] >= 0).float().argmax(1).numpy() - 2) // 2)[0]


def test_mqar_is_its_seed_and_held_out_seeds_never_train():
    a, b, c = mqar(20, 32, 4, 64, seed=7), mqar(20, 32, 4, 64, seed=7), mqar(20, 32, 4, 64, seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[0], c[0])
    # training batches take even seeds, the held-out set an odd one: never one of them
    assert all(train_seed(s, it) % 2 == 0 and held_out_seed(s) % 2 == 1 for s in (0, 42, 43) for it in range(1000))
    assert len({train_seed(42, it) for it in range(1000)}) == 1000


def test_accuracy_counts_the_scored_targets_and_the_whole_sequences():
    x, y = mqar(4, 16, 2, 32, seed=1)

    class HalfRight(torch.nn.Module):  # right at the first query of each sequence, wrong at the second
        def forward(self, x, y):
            logits = torch.zeros(*x.shape, 32)
            first = (y >= 0).float().argmax(1)
            for i, t in enumerate(first.tolist()):
                logits[i, t, y[i, t]] = 1.0
            return logits, None
    assert accuracy(HalfRight(), x, y, 3, torch.autocast('cpu', enabled=False)) == (0.5, 0.0)


@pytest.mark.parametrize('args, said', [
    (['--seq_len=16', '--n_pairs=5'], 'seq_len=16, n_pairs=5, vocab_size=8192: MQAR needs seq_len >= 4 x n_pairs'),
    (['--vocab_size=8', '--n_pairs=4'], 'at least n_pairs keys in 1 .. vocab_size/2 - 1'),
    (['--n_pairs=0'], 'n_pairs=0'),
    (['--max_iters=0'], 'max_iters=0: allowed values are integers >= 1'),
    (['--mixer=grassmann', '--seq_len=16', '--n_pairs=2'], 'a lag of 16 is never valid'),
])
def test_impossible_settings_are_refused_in_one_line(tmp_path, args, said):
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'recall.py'), *args, f'--out_dir={tmp_path / "out"}'],
                       capture_output=True, text=True)
    assert p.returncode != 0 and 'Traceback' not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert said in p.stderr and not (tmp_path / 'out').exists()


def test_a_run_writes_its_results_json(tmp_path):
    """A two-iteration run end to end, with a Grassmann mixer's options: results.json holds the config, each
    evaluation, the code's commit, the machine, the dtype and the wall time."""
    out = tmp_path / 'out'
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'recall.py'), '--seq_len=32', '--n_pairs=4', '--vocab_size=64',
                        '--mixer=grassmann', '--pairing=unnormalised', '--lags=(1,2,4)', '--n_embd=32', '--max_iters=2',
                        '--eval_interval=1', '--eval_examples=20', '--batch_size=8', f'--out_dir={out}'],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    r = json.load(open(out / 'results.json'))
    assert [h['iter'] for h in r['history']] == [1, 2] and 0 <= r['accuracy'] <= 1 and 0 <= r['sequences_right'] <= r['accuracy']
    assert r['model_args']['pairing'] == 'unnormalised' and r['model_args']['block_size'] == 32 and r['dtype'] == 'float32'
    assert r['code']['commit'] and r['device_name'] and r['wall_time_s'] > 0 and 'held-out accuracy' in p.stdout


@pytest.mark.parametrize('mixer, reach', [('grassmann', True), ('attention', False)])
def test_a_mixer_cannot_recall_past_its_reach(mixer, reach):
    """One Grassmann layer with lags (1,) reads a query's own token and the one before: the stored values
    further back cannot change its prediction at all, so its accuracy on them is chance by construction.
    One attention layer reads them (the check is not vacuous)."""
    torch.manual_seed(0)
    kw = dict(lags=(1,)) if mixer == 'grassmann' else {}
    model = GPT(GPTConfig(mixer=mixer, n_layer=1, n_head=2, n_embd=32, reduced_dim=8, block_size=32, vocab_size=64,
                          dropout=0.0, norm='pre', **kw)).eval()
    x, y = mqar(50, 32, 4, 64, seed=11)
    other = x.clone()
    other[:, 1:2 * 4 - 2:2] = torch.randint(32, 64, (50, 3))  # every stored value but the last pair's: 3 or more back
    q = y >= 0
    with torch.no_grad():
        a, b = model(x, y)[0][q], model(other, y)[0][q]
    # unchanged logits: the prediction never depends on the value it should recall, so over values drawn
    # at random it is right with probability 1 / (number of values), whatever the weights
    assert torch.equal(a, b) == reach
