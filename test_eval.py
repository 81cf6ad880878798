"""
Evaluation and comparison: the window protocol (strides), the metrics' formulas, compare.py on
hand-made results files (the table's numbers, the grouping, the significance test, bad inputs).

Usage: python -m pytest -q test_eval.py
"""
import json
import math
import os
import re
import statistics
import subprocess
import sys

import numpy as np
import pytest
import torch

from stats import paired, student_t_p, welch
from data import eval_windows, evaluate, metrics
from model import GPT, GPTConfig

ROOT = os.path.dirname(os.path.abspath(__file__))

# -----------------------------------------------------------------------------
# the evaluation protocol


def scored_positions(windows):
    """Stream positions of every scored target, and the context each one had."""
    return [(s + 1 + i, i + 1) for s, first, last in windows for i in range(first, last)]


def test_windows_by_hand():
    # 20 tokens, block 4: blocks of 5 at 0, 5, 10, 15; targets 1-4, 6-9, 11-14, 16-19
    assert eval_windows(20, 4, 4).tolist() == [[0, 0, 4], [5, 0, 4], [10, 0, 4], [15, 0, 4]]
    assert eval_windows(20, 4, 2).tolist()[:4] == [[0, 0, 2], [0, 2, 4], [3, 2, 4], [5, 2, 4]]


@pytest.mark.parametrize('stride', (1, 3, 16, 31, 32))
def test_every_stride_scores_the_block_targets_once_with_enough_context(stride):
    bs, n = 32, 1000
    block_targets = sorted(b + 1 + i for b in range(0, n // (bs + 1) * (bs + 1), bs + 1) for i in range(bs))
    scored = scored_positions(eval_windows(n, bs, stride))
    assert sorted(p for p, _ in scored) == block_targets
    assert all(ctx >= bs - stride for p, ctx in scored if p > bs)  # past the first block: full promise


def tiny_model(**kw):
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=16, reduced_dim=4, dropout=0.0,
                          lags=(1, 2, 4, 8, 12), **kw))
    for p in model.parameters():  # larger than the 0.02 init, so that context visibly matters
        torch.nn.init.normal_(p, std=0.5)
    return model.eval()


@pytest.mark.parametrize('mixer', ('attention', 'grassmann'))
def test_stride_equal_to_block_size_is_the_block_protocol(mixer):
    model = tiny_model(mixer=mixer)
    data = np.random.default_rng(0).integers(0, 40, 300).astype(np.uint16)
    blocks = torch.from_numpy(data[: 300 // 17 * 17].astype(np.int64)).view(-1, 17)
    by_hand = model(blocks[:, :-1], blocks[:, 1:])[1].item()  # every block in one batch
    assert evaluate(model, data, 16, 5, 'cpu')['loss'] == pytest.approx(by_hand, rel=1e-6)
    assert evaluate(model, data, 16, 5, 'cpu', stride=16)['loss'] == pytest.approx(by_hand, rel=1e-6)  # stride given, not defaulted
    # more context changes the number, for a model that reads context at all
    assert evaluate(model, data, 16, 5, 'cpu', stride=4)['loss'] != pytest.approx(by_hand, rel=1e-3)


def test_a_context_free_model_scores_the_same_at_every_stride():
    class Unigram(torch.nn.Module):  # logits that ignore the context: only the scored set can matter
        def forward(self, x, y):
            logits = torch.log_softmax(torch.arange(40.0), 0).expand(*x.shape, 40)
            return logits, torch.nn.functional.cross_entropy(logits.reshape(-1, 40), y.reshape(-1), ignore_index=-1)
    data = np.random.default_rng(1).integers(0, 40, 500).astype(np.uint16)
    losses = [evaluate(Unigram(), data, 16, 7, 'cpu', stride=s)['loss'] for s in (1, 5, 16)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and losses[0] == pytest.approx(losses[2], rel=1e-6)


def test_metrics_by_hand():
    m = metrics({'loss': 2.0, 'recall_loss': 1.0, 'recall_tokens': 10, 'other_loss': None, 'other_tokens': 0},
                {'tokens': 100, 'bytes': 400, 'words': 80})
    assert m['ppl'] == pytest.approx(math.exp(2.0))
    assert m['recall_ppl'] == pytest.approx(math.e) and m['recall_tokens'] == 10
    assert m['other_ppl'] is None and m['other_tokens'] == 0  # no token, no perplexity (not a crash)
    assert m['bpb'] == pytest.approx(200 / math.log(2) / 400)  # 0.7213 bits per byte
    assert m['word_ppl'] == pytest.approx(math.exp(2.5))  # 200 nats over 80 words


def repeated_bigrams_by_loop(window):
    """The spec's recall tokens of one window (its T + 1 tokens) written out: target t is one when the
    bigram ending at it was seen at an earlier position of the window."""
    seen, out = set(), []
    for t in range(len(window) - 1):
        bigram = (int(window[t]), int(window[t + 1]))
        out.append(bigram in seen)
        seen.add(bigram)
    return out


def test_recall_tokens_are_the_repeated_bigrams_a_plain_loop_finds():
    from data import recall_targets
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 6, (50, 33)).astype(np.uint16)  # 6 ids: repeats are frequent
    rows[0, :] = 7  # one bigram again and again: all but the first target
    rows[1, :] = np.arange(33)  # no bigram twice
    rows[2, :2], rows[2, 10:12] = (60000, 65535), (60000, 65535)  # ids near the top of uint16 keep their pair apart
    got = recall_targets(rows)
    assert got.tolist() == [repeated_bigrams_by_loop(r) for r in rows]
    assert got[0].tolist() == [False] + [True] * 31 and not got[1].any() and got[2, 10]
    assert recall_targets(np.array([[1, 2, 3, 1, 3]], dtype=np.uint16)).tolist() == [[False, False, False, False]]  # (1, 3) is no (1, 2)


@pytest.mark.parametrize('stride', (16, 5))
def test_the_recall_and_other_losses_are_those_of_their_tokens(stride):
    """Each group's loss is the mean of its tokens' own losses (every scored target's, by hand, window by
    window), the two weighted by their counts give the overall loss, and the counts add up."""
    from data import eval_windows
    model = tiny_model(mixer='grassmann')
    data = np.random.default_rng(2).integers(0, 8, 400).astype(np.uint16)  # a small vocabulary: many recall tokens
    r = evaluate(model, data, 16, 5, 'cpu', stride=stride)
    losses = {True: [], False: []}
    for start, first, last in eval_windows(len(data), 16, stride):
        window = data[start:start + 17].astype(np.int64)
        logits, _ = model(torch.from_numpy(window[None, :-1]), torch.from_numpy(window[None, 1:]))
        per_token = torch.nn.functional.cross_entropy(logits[0], torch.from_numpy(window[1:]), reduction='none')
        recall = repeated_bigrams_by_loop(window)
        for i in range(first, last):
            losses[recall[i]].append(per_token[i].item())
    assert r['recall_tokens'] == len(losses[True]) > 0 and r['other_tokens'] == len(losses[False]) > 0
    assert r['tokens'] == r['recall_tokens'] + r['other_tokens']
    assert r['recall_loss'] == pytest.approx(statistics.mean(losses[True]), rel=1e-5)
    assert r['other_loss'] == pytest.approx(statistics.mean(losses[False]), rel=1e-5)
    weighted = (r['recall_loss'] * r['recall_tokens'] + r['other_loss'] * r['other_tokens']) / r['tokens']
    assert weighted == pytest.approx(r['loss'], rel=1e-6)

# -----------------------------------------------------------------------------
# the significance tests


def test_student_t_p_values_match_the_tables():
    assert student_t_p(2.228138852, 10) == pytest.approx(0.05, abs=1e-9)  # the two-sided 5% points
    assert student_t_p(12.706204736, 1) == pytest.approx(0.05, abs=1e-9)
    assert student_t_p(2.0, 10) == pytest.approx(0.073388, abs=1e-6)
    assert student_t_p(0.0, 7) == 1.0


def test_paired_by_hand():
    # seeds 1-3 shared: differences 1, 2, 3 (mean 2, sd 1); seed 4 of one arm alone is left out
    t, df, p, n = paired({1: 11.0, 2: 14.0, 3: 12.0, 4: 99.0}, {1: 10.0, 2: 12.0, 3: 9.0})
    assert (df, n) == (2, 3) and t == pytest.approx(2 / (1 / math.sqrt(3)))
    assert p == pytest.approx(student_t_p(2 * math.sqrt(3), 2))
    assert paired({1: 1.0, 2: 2.0}, {1: 1.0, 3: 0.0}) is None  # one shared seed: no test
    assert paired({1: 2.0, 2: 3.0}, {1: 1.0, 2: 2.0})[2] == 0.0  # every seed moved by the same: certain
    # the same numbers unpaired: Welch's sees the seeds' spread, the paired test does not
    assert welch([11, 14, 12], [10, 12, 9])[2] > 0.15 > p


def test_welch_by_hand():
    t, df, p = welch([1, 2, 3, 4], [2, 3, 4, 5, 6])
    # means 2.5 and 4, variances of the means 5/12 and 1/2
    assert t == pytest.approx(-1.5 / math.sqrt(5 / 12 + 1 / 2))
    assert df == pytest.approx((5 / 12 + 1 / 2) ** 2 / ((5 / 12) ** 2 / 3 + (1 / 2) ** 2 / 4))
    assert 0.1 < p < 0.2

# -----------------------------------------------------------------------------
# compare.py


def fake_run(folder, mixer, seed, val_ppls, test_ppl, dataset='wikitext2', block_size=128, units='gpt2, tokens, <unk> one token',
             dtype='float32', device_name='cpu', recall=None, **config):
    """A results.json as train.py writes it; recall = (val recall ppl, val other ppl, test recall, test other)."""
    os.makedirs(folder, exist_ok=True)
    history = [{'iter': 10 * (i + 1), 'epoch': i + 1.0, 'train_loss': 5.0, 'val_loss': math.log(v), 'val_ppl': v,
                'lr': 1e-3, 'tokens_per_s': 1000.0 * (i + 1), 'elapsed_s': 60.0 * (i + 1)} for i, v in enumerate(val_ppls)]
    best = min(history, key=lambda h: h['val_ppl'])
    results = {'config': dict(mixer=mixer, seed=seed, out_dir=str(folder), dataset=dataset, block_size=block_size, **config),
               'tokenizer': 'gpt2', 'units': units, 'eval_stride': block_size, 'n_params': 1000 if mixer == 'attention' else 1100,
               'history': history, 'best': {'epoch': best['epoch'], 'iter': best['iter'], 'val_ppl': best['val_ppl']},
               'test': {'loss': math.log(test_ppl), 'ppl': test_ppl, 'bpb': 1.5}, 'wall_time_s': 600.0,
               'device': 'cpu', 'device_name': device_name, 'dtype': dtype, 'torch': '2.x'}
    if recall:
        for where, prefix, (r, o) in (('best', 'val_', recall[:2]), ('test', '', recall[2:])):
            results[where].update({f'{prefix}recall_ppl': r, f'{prefix}other_ppl': o, f'{prefix}recall_tokens': 10,
                                   f'{prefix}other_tokens': 90})
    with open(os.path.join(folder, 'results.json'), 'w') as f:
        json.dump(results, f)


def compare(*args, check=True):
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'compare.py'), *map(str, args)], capture_output=True, text=True)
    assert not check or p.returncode == 0, p.stdout + p.stderr
    return p


def test_compare_groups_seeds_and_writes_table_and_figures(tmp_path):
    runs = tmp_path / 'runs'
    fake_run(runs / 'a1', 'attention', 1, [300, 200, 210], 190)
    fake_run(runs / 'a2', 'attention', 2, [310, 220], 200)
    fake_run(runs / 'g1', 'grassmann', 1, [320, 250], 240, lag_schedule='all')
    fake_run(runs / 'g2', 'grassmann', 2, [330, 270], 260, lag_schedule='all')
    fake_run(runs / 'g3', 'grassmann', 3, [340, 260], 250, lag_schedule='layer')
    compare(f"{runs}/*", '--out', tmp_path / 'res')
    text = (tmp_path / 'res' / 'results.md').read_text()
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
            for line in text.splitlines() if line.startswith('| ') and 'model' not in line and '---' not in line}
    assert set(rows) == {'attention', 'grassmann (lag_schedule=all)', 'grassmann (lag_schedule=layer)'}
    att, gra = rows['attention'], rows['grassmann (lag_schedule=all)']
    assert att[:4] == ['1,000', '2', '210.00 ± 14.14', '195.00 ± 7.07']  # best val ppl 200 and 220
    assert gra[:4] == ['1,100', '2', '260.00 ± 14.14', '250.00 ± 14.14']
    assert gra[-1] == '+23.8%'  # (260 - 210) / 210
    assert rows['grassmann (lag_schedule=layer)'][1] == '1'
    _, _, p = welch([250, 270], [200, 220])
    assert f"p = {p:.3g}" in text and 'not significant' in text
    assert 'fewer than two seeds' in text
    for f in ('val_ppl.png', 'best.png'):
        assert (tmp_path / 'res' / f).stat().st_size > 0 and f"]({f})" in text


def test_compare_skips_broken_runs_by_name(tmp_path):
    fake_run(tmp_path / 'ok', 'attention', 1, [200], 190)
    (tmp_path / 'unfinished').mkdir()
    (tmp_path / 'half').mkdir()
    (tmp_path / 'half' / 'results.json').write_text('{"config": {"mixer": "grass')
    p = compare(tmp_path / 'ok', tmp_path / 'unfinished', tmp_path / 'half', '--out', tmp_path / 'res')
    assert f"skipped {tmp_path / 'unfinished'}: no results.json" in p.stdout
    assert f"skipped {tmp_path / 'half'}: results.json is not valid JSON" in p.stdout
    assert str(tmp_path / 'half') not in (tmp_path / 'res' / 'results.md').read_text()


@pytest.mark.parametrize('other', ({'dataset': 'wikitext2_bert'}, {'block_size': 256}, {'units': 'gpt2, tokens, <unk> as text'}))
def test_compare_refuses_to_mix_data_sets_block_sizes_or_units(tmp_path, other):
    fake_run(tmp_path / 'a', 'attention', 1, [200], 190)
    fake_run(tmp_path / 'b', 'grassmann', 1, [250], 240, **other)
    p = compare(tmp_path / 'a', tmp_path / 'b', '--out', tmp_path / 'res', check=False)
    assert p.returncode != 0 and 'not comparable' in p.stderr
    assert str(tmp_path / 'a') in p.stderr and str(tmp_path / 'b') in p.stderr
    assert not (tmp_path / 'res' / 'results.md').exists()


def test_compare_keeps_a_table_to_one_dtype_and_names_the_machines(tmp_path):
    fake_run(tmp_path / 'a', 'attention', 1, [200], 190, dtype='bfloat16', device_name='cpu')
    fake_run(tmp_path / 'b', 'grassmann', 1, [250], 240, dtype='bfloat16', device_name='AMD EPYC, fast bf16')
    compare(tmp_path / 'a', tmp_path / 'b', '--out', tmp_path / 'res')
    assert ('on 2 kinds of machine: cpu, bfloat16, torch 2.x (1 run); AMD EPYC, fast bf16, bfloat16, torch 2.x (1 run)'
            in (tmp_path / 'res' / 'results.md').read_text())
    fake_run(tmp_path / 'c', 'grassmann', 2, [260], 250, dtype='float32')
    p = compare(tmp_path / 'a', tmp_path / 'b', tmp_path / 'c', '--out', tmp_path / 'mixed', check=False)
    assert p.returncode != 0 and 'trained in different dtypes' in p.stderr and '--mixed_dtypes' in p.stderr
    assert f"bfloat16: {tmp_path / 'a'}, {tmp_path / 'b'}; float32: {tmp_path / 'c'}" in p.stderr
    assert not (tmp_path / 'mixed').exists()
    compare(tmp_path / 'a', tmp_path / 'b', tmp_path / 'c', '--out', tmp_path / 'mixed', '--mixed_dtypes')
    assert 'on 3 kinds of machine (**mixed dtypes**' in (tmp_path / 'mixed' / 'results.md').read_text()


def test_compare_says_whether_a_run_repeats_another(tmp_path):
    fake_run(tmp_path / 'ref', 'attention', 42, [300, 205.674], 190)
    fake_run(tmp_path / 'again', 'attention', 42, [300, 205.674], 190)
    p = compare(tmp_path / 'again', '--reproduces', tmp_path / 'ref')
    assert 'best val ppl 205.67 -> 205.67: the same to two decimals' in p.stdout and 'every loss bit for bit the same' in p.stdout
    fake_run(tmp_path / 'close', 'attention', 42, [300, 205.6749], 190)  # the same to two decimals, not bit for bit
    p = compare(tmp_path / 'close', '--reproduces', tmp_path / 'ref')
    assert '1 of 5 losses differ: val_loss at iteration 20' in p.stdout
    for name, ppls, other in (('worse', [300, 205.68], {}), ('seed', [300, 205.674], {'seed': 43}),
                              ('lr', [300, 205.674], {'learning_rate': 2e-3})):
        fake_run(tmp_path / name, 'attention', other.pop('seed', 42), ppls, 190, **other)
        p = compare(tmp_path / name, '--reproduces', tmp_path / 'ref', check=False)
        assert p.returncode == 1 and f"{tmp_path / name} does not repeat {tmp_path / 'ref'}" in p.stderr
    assert 'the runs differ in: learning_rate 0.001 -> 0.002' in p.stdout  # a key not recorded: train.py's default
    p = compare(tmp_path / 'again', tmp_path / 'close', '--reproduces', tmp_path / 'ref', check=False)
    assert p.returncode != 0 and 'compares one complete run with it' in p.stderr
    # another CPU model in float32 (make stage6-machine): within a fraction of the reference, not to two decimals
    fake_run(tmp_path / 'near', 'attention', 42, [300, 205.674 * 1.004], 190)
    fake_run(tmp_path / 'far', 'attention', 42, [300, 205.674 * 0.994], 190, attn_layers=[])  # [] is the default ()
    p = compare(tmp_path / 'near', '--reproduces', tmp_path / 'ref', '--within', '0.005')
    assert 'best val ppl 205.67 -> 206.50: +0.400%, within 0.5%' in p.stdout
    p = compare(tmp_path / 'far', '--reproduces', tmp_path / 'ref', '--within', '0.005', check=False)
    assert p.returncode == 1 and '-0.600%, NOT within 0.5%' in p.stdout and 'differ in' not in p.stdout
    p = compare(tmp_path / 'again', check=False)
    assert p.returncode != 0 and '--out is required' in p.stderr


def test_compare_names_the_units_and_pairs_the_recipes(tmp_path):
    for recipe, (a, g) in {'seed': (300, 330), 'seed_init_normal': (200, 260)}.items():
        fake_run(tmp_path / f'{recipe}_attention-seed42', 'attention', 42, [a], a, recipe=recipe)
        fake_run(tmp_path / f'{recipe}_grassmann-seed42', 'grassmann', 42, [g], g, recipe=recipe)
    compare(f"{tmp_path}/*-seed*", '--out', tmp_path / 'res', '--paired')
    text = (tmp_path / 'res' / 'results.md').read_text()
    assert 'Units: gpt2, tokens, <unk> one token.' in text
    assert '| seed | 1 / 1 | 300.00 | 330.00 | +10.0% |' in text and '| seed_init_normal | 1 / 1 | 200.00 | 260.00 | +30.0% |' in text
    compare(f"{tmp_path}/*-seed*", '--out', tmp_path / 'res2')
    assert 'side by side' not in (tmp_path / 'res2' / 'results.md').read_text()


def test_compare_lists_the_code_behind_the_table_and_warns_of_different_data(tmp_path):
    sha = {'train': 'a' * 64, 'val': 'b' * 64, 'test': 'c' * 64}
    fake_run(tmp_path / 'a-seed1', 'attention', 1, [200], 190)  # written before code and data were recorded
    for name, commit, dirty, val in (('a-seed2', '1' * 40, False, 'b'), ('g-seed1', '1' * 40, True, 'b'), ('g-seed2', '2' * 40, False, 'd')):
        fake_run(tmp_path / name, name[0].replace('a', 'attention').replace('g', 'grassmann'), int(name[-1]), [200], 190)
        r = json.load(open(tmp_path / name / 'results.json'))
        r.update(code={'commit': commit, 'dirty': dirty}, data={'sha256': {**sha, 'val': val * 64}})
        json.dump(r, open(tmp_path / name / 'results.json', 'w'))
    p = compare(f"{tmp_path}/*-seed*", '--out', tmp_path / 'res')
    text = (tmp_path / 'res' / 'results.md').read_text()
    assert ('Code: `111111111111` (1 run); `111111111111 with uncommitted changes` (1 run); `222222222222` (1 run); '
            '`not recorded` (1 run).') in text
    assert '**Warning: these runs read different data**' in text and 'g-seed2' in text.split('different data')[1]
    assert 'warning: the runs read different data' in p.stderr
    assert '1 of 4 runs predate the record' in text
    p = compare(f"{tmp_path}/a-seed2", f"{tmp_path}/g-seed1", '--out', tmp_path / 'res2')
    assert 'different data' not in (tmp_path / 'res2' / 'results.md').read_text() + p.stderr


def test_compare_sets_our_gap_beside_published_ones(tmp_path):
    fake_run(tmp_path / 'a', 'attention', 1, [200], 190)
    fake_run(tmp_path / 'g', 'grassmann', 1, [250], 240)
    compare(tmp_path / 'a', tmp_path / 'g', '--out', tmp_path / 'res', '--published', 'the paper', '248.4', '275.7')
    text = (tmp_path / 'res' / 'results.md').read_text()
    assert '| the paper (published) | 248.40 | 275.70 | +11.0% |' in text
    assert '| these runs: grassmann | 200.00 | 250.00 | +25.0% |' in text
    p = compare(tmp_path / 'a', '--out', tmp_path / 'res2', '--published', 'x', 'big', '1', check=False)
    assert p.returncode != 0 and 'must be two perplexities' in p.stderr


def test_compare_names_study_arms_by_folder_and_measures_the_gap_to_each_attention_arm(tmp_path):
    runs = tmp_path / 'runs'
    fake_run(runs / 'attention_post-seed42', 'attention', 42, [200], 190, norm='post')
    fake_run(runs / 'attention_post-seed43', 'attention', 43, [210], 200, norm='post')
    fake_run(runs / 'attention_pre-seed42', 'attention', 42, [180], 170, norm='pre')
    fake_run(runs / 'attention_pre-seed43', 'attention', 43, [190], 180, norm='pre')
    fake_run(runs / 'grassmann_pre-seed42', 'grassmann', 42, [230], 220, norm='pre')
    fake_run(runs / 'grassmann_pre-seed43', 'grassmann', 43, [250], 240, norm='pre')
    compare(f"{runs}/*", '--out', tmp_path / 'res')
    text = (tmp_path / 'res' / 'results.md').read_text()
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith('| model'))
    assert lines[head].endswith('| gap to attention_post | gap to attention_pre |')
    assert lines[head].count('|') == lines[head + 1].count('|') == lines[head + 2].count('|')  # a well-formed table
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
            for line in text.splitlines() if line.startswith('| ') and 'model' not in line and '---' not in line}
    assert list(rows) == ['attention_post', 'attention_pre', 'grassmann_pre']  # attention arms first
    assert rows['grassmann_pre'][-2:] == ['+17.1%', '+29.7%']  # 240 against 205 and against 185
    assert rows['attention_pre'][-2:] == ['-9.8%', '-']
    for base, ppls in (('attention_post', [200, 210]), ('attention_pre', [180, 190])):
        _, _, p = welch([230, 250], ppls)
        assert f"- grassmann_pre vs {base}, best val ppl: Welch's t" in text and f"p = {p:.3g}" in text
        t, df, p, n = paired({42: 230, 43: 250}, dict(zip((42, 43), ppls)))  # the same seeds: paired too
        assert f"paired by seed (2 seeds): t = {t:.2f}, df = 1, p = {p:.3g}" in text


def test_compare_measures_against_the_named_baselines_and_splits_recall(tmp_path):
    runs = tmp_path / 'runs'
    for seed, shift in ((42, 0), (43, 10)):
        fake_run(runs / f'attention_post-seed{seed}', 'attention', seed, [200 + shift], 190, recall=(20, 300, 21, 290))
        fake_run(runs / f'attention_window-seed{seed}', 'attention', seed, [210 + shift], 200, attn_window=16)
        fake_run(runs / f'wedge-seed{seed}', 'grassmann', seed, [190 + shift], 180, recall=(30, 270, 31, 260))
    compare(f"{runs}/*", '--out', tmp_path / 'res', '--baselines', 'wedge,attention_post')
    text = (tmp_path / 'res' / 'results.md').read_text()
    assert '| gap to wedge | gap to attention_post |' in text  # in the order named; attention_window is no baseline
    assert '- attention_window vs wedge' in text and '- attention_window vs attention_post' in text
    assert 'vs attention_window' not in text
    split = text.split('## Recall tokens and the others')[1]
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]] for line in split.splitlines()
            if line.startswith('| ') and 'model' not in line and '---' not in line}
    assert list(rows) == ['attention_post', 'wedge']  # a group without the split is left out of this table
    assert rows['wedge'] == ['2', '30.00 ± 0.00', '270.00 ± 0.00', '31.00 ± 0.00', '260.00 ± 0.00', '10.0%, 10.0%', '-', '-',
                             '+50.0%', '-10.0%']
    assert rows['attention_post'][-4:] == ['-33.3%', '+11.1%', '-', '-']
    lines = split.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith('| model'))
    assert lines[head].count('|') == lines[head + 1].count('|') == lines[head + 2].count('|') == 12  # a well-formed table
    compare(f"{runs}/*", '--out', tmp_path / 'res3', '--baselines', 'attention_window')  # a baseline without the split
    lines = (tmp_path / 'res3' / 'results.md').read_text().split('## Recall tokens')[1].splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith('| model'))
    assert lines[head].count('|') == lines[head + 1].count('|') == lines[head + 2].count('|') == 8
    p = compare(f"{runs}/*", '--out', tmp_path / 'res2', '--baselines', 'nowhere', check=False)
    assert p.returncode != 0 and 'nowhere' in p.stderr and 'the groups:' in p.stderr


def test_compare_takes_a_gap_apart_step_by_step(tmp_path):
    runs = tmp_path / 'runs'
    arms = {'full': [200, 204, 202], 'window': [210, 214, 212], 'mixer': [220, 222, 224], 'linear': [230, 231, 233]}
    for arm, vals in arms.items():
        for seed, v in zip((42, 43, 44), vals):
            fake_run(runs / f'{arm}-seed{seed}', 'attention' if arm in ('full', 'window') else 'grassmann', seed, [v], v,
                     arm=arm)
    p = compare(f"{runs}/*", '--out', tmp_path / 'res', '--chain', 'full,window,mixer,linear')
    rows = [line for line in p.stdout.splitlines() if line.startswith('| ') and 'from' not in line and '---' not in line
            and ('+' in line.split('|')[4] or '-' in line.split('|')[4]) and line.split('|')[1].strip() in ('1', '2', '3', 'all')]
    assert len(rows) == 4
    cells = [[c.strip() for c in r.split('|')[1:-1]] for r in rows]
    assert cells[0][1] == 'full (202.00 ± 2.00)' and cells[0][2] == 'window (212.00 ± 2.00)'
    assert cells[0][3] == '+10.00 (+5.0%)' and cells[2][3] == '+9.33 (+4.6%)' and cells[3][3] == '+29.33 (+14.5%)'
    from compare import welch
    assert cells[1][4] == f"{welch(arms['mixer'], arms['window'])[2]:.3g}"
    assert cells[1][5] == f"{paired(dict(zip((42, 43, 44), arms['mixer'])), dict(zip((42, 43, 44), arms['window'])))[2]:.3g}"
    p = compare(f"{runs}/*", '--out', tmp_path / 'res2', '--chain', 'full,nowhere', check=False)
    assert p.returncode != 0 and 'nowhere' in p.stderr and 'the groups:' in p.stderr and not (tmp_path / 'res2').exists()


def test_device_batches_are_the_host_batches_of_the_epoch_order():
    """train.py gathers each batch from the token tensor on the device; the blocks must be exactly those
    the host path (numpy slicing of the memmap, in the epoch's order) gives."""
    from data import epoch_order, gather_blocks, num_blocks
    data = np.random.default_rng(3).integers(0, 30000, 5000).astype(np.uint16)
    bs, B = 16, 8
    n = num_blocks(data, bs)
    tokens = torch.from_numpy(data.astype(np.int64))
    for epoch in (0, 1):
        order = epoch_order(n, epoch, seed=42)
        assert sorted(order.tolist()) == list(range(n))
        for start in range(0, n - B + 1, B):
            ids = order[start:start + B]
            rows = torch.from_numpy(data[ids[:, None] * (bs + 1) + np.arange(bs + 1)].astype(np.int64))  # the host path
            x, y = gather_blocks(tokens, torch.from_numpy(ids), bs)
            assert torch.equal(x, rows[:, :-1]) and torch.equal(y, rows[:, 1:])


def test_evaluation_batches_all_have_one_shape():
    model = tiny_model(mixer='grassmann')
    shapes = []
    recorder = type('Recorder', (torch.nn.Module,), {'forward': lambda self, x, y: shapes.append(tuple(x.shape)) or model(x, y)})()
    data = np.random.default_rng(0).integers(0, 40, 300).astype(np.uint16)  # 17 blocks: batches of 5 leave 2
    loss = evaluate(recorder, data, 16, 5, 'cpu')['loss']
    blocks = torch.from_numpy(data[: 300 // 17 * 17].astype(np.int64)).view(-1, 17)
    assert set(shapes) == {(5, 16)} and len(shapes) == 4
    assert loss == pytest.approx(model(blocks[:, :-1], blocks[:, 1:])[1].item(), rel=1e-6)  # the padding scores nothing


def test_compare_groups_a_run_that_predates_a_key_with_its_default(tmp_path):
    from configurator import script_defaults
    defaults = script_defaults(os.path.join(ROOT, 'train.py'))
    fake_run(tmp_path / 'attention_post-seed42', 'attention', 42, [200], 190)  # written before lag_weights existed
    fake_run(tmp_path / 'attention_post-seed43', 'attention', 43, [210], 200, lag_weights=defaults['lag_weights'])
    fake_run(tmp_path / 'other-seed42', 'attention', 42, [220], 210, lag_weights='learned')
    compare(f"{tmp_path}/*-seed*", '--out', tmp_path / 'res')
    text = (tmp_path / 'res' / 'results.md').read_text()
    assert '| attention_post | 1,000 | 2 | 205.00 ± 7.07 |' in text and '| other | 1,000 | 1 |' in text


def test_every_mutant_still_finds_its_line():
    """mutants.py replaces one exact text per mutant: a refactor that moves the text makes the mutant
    stale (it would report 'stale' only when run, minutes later)."""
    import mutants
    for name, (file, old, new, tests) in mutants.MUTANTS.items():
        assert open(os.path.join(ROOT, file), encoding='utf-8').read().count(old) == 1, name
        assert old != new and tests.split()[0].startswith('test_'), name

# -----------------------------------------------------------------------------
# the documentation: links that resolve, and tables that say what the runs say


def markdown_files():
    skip = {'.git', '.venv', 'out', 'data', 'wandb', '__pycache__', '.pytest_cache'}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith('out')]
        yield from (os.path.join(folder, f) for f in files if f.endswith('.md'))


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower().replace('`', ''))
    return text.replace(' ', '-')


def test_every_relative_link_in_the_markdown_resolves():
    broken = []
    for path in markdown_files():
        text = open(path, encoding='utf-8').read()
        text = re.sub(r'```.*?```', '', text, flags=re.S)  # code blocks hold commands, not links
        for target in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'[a-z]+:', target):
                continue
            file, _, anchor = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
            if not os.path.exists(dest):
                broken.append(f"{os.path.relpath(path, ROOT)}: {target}")
            elif anchor and dest.endswith('.md'):
                headings = re.findall(r'^#+ (.*)$', open(dest, encoding='utf-8').read(), re.M)
                if anchor not in {slug(h) for h in headings}:
                    broken.append(f"{os.path.relpath(path, ROOT)}: {target} (no such heading)")
    assert not broken, broken


def groups_of(result_set):
    import compare
    runs = compare.load_runs([os.path.join(ROOT, 'results', result_set, 'runs', '*')])
    groups, _ = compare.group_runs(runs)
    return {label: [runs[f] for f in folders] for label, folders in groups}


def label_of(cell, labels):
    """The group a table row is about: its first cell's first word ('study/x (...)' -> 'study_x')."""
    word = re.sub(r'[*`]', '', cell).strip().split(' ')[0].replace('/', '_')
    return word if word in labels else None


@pytest.mark.parametrize('result_set', ('stage4', 'study', 'gpu', 'recipes', 'stage5', 'stage6'))
def test_result_tables_say_what_the_runs_say(result_set):
    """Every table row of a result set's README (and of results.md) that names one of its arms gives
    that arm's best validation and test perplexity as compare.py computes them from the runs (the first
    and second 'mean ± std' or two-decimal cells; in a recall table, its recall and other perplexities),
    and every 'A vs B' row Welch's t, df and p."""
    from compare import mean_std, welch
    groups = groups_of(result_set)
    checked = 0
    for doc in ('README.md', 'results.md'):
        path = os.path.join(ROOT, 'results', result_set, doc)
        recall = False  # inside compare.py's table of the recall tokens and the others
        for line in open(path, encoding='utf-8').read().splitlines():
            recall = line.startswith('## Recall tokens') or (recall and not line.startswith('#'))
            cells = [c.strip() for c in line.strip().strip('|').split('|')] if line.startswith('| ') else []
            if len(cells) < 3 or set(cells[1]) <= set('-: '):
                continue
            first = cells[1] if re.fullmatch(r'\d+', cells[0]) else cells[0]  # the study's tables lead with a stage
            label = label_of(first, groups)
            versus = re.fullmatch(r'(\S+) vs (\S+)(?: \(.*\))?', first)
            if label and not versus:
                numbers = [c for c in cells if re.fullmatch(r'\d[\d,]*\.\d\d( ± \d+\.\d\d)?', c)]
                if not numbers:  # a table of what the arms are, not of what they scored
                    continue
                rs = groups[label]
                if recall:
                    assert numbers[:4] == [mean_std([r[w][k] for r in rs]) for w, k in (('best', 'val_recall_ppl'), ('best', 'val_other_ppl'),
                                                                                        ('test', 'recall_ppl'), ('test', 'other_ppl'))], (doc, line)
                    checked += 1
                    continue
                assert numbers[:2] == [mean_std([r['best']['val_ppl'] for r in rs]), mean_std([r['test']['ppl'] for r in rs])], \
                    (doc, line)
                checked += 1
            elif versus and all(label_of(v, groups) for v in versus.groups()):
                a, b = ([r['best']['val_ppl'] for r in groups[label_of(v, groups)]] for v in versus.groups())
                if min(len(a), len(b)) < 2:
                    continue
                t, df, p = welch(a, b)
                stated = [c for c in cells[1:] if re.fullmatch(r'-?\d+(\.\d+)?(e-\d+)?', c)]
                assert stated[-3:] == [f'{t:.2f}', f'{df:.1f}', f'{p:.2g}'], (doc, line)
                if len(stated) == 4:  # the paired t-test by seed before Welch's columns
                    x, y = ({r['config']['seed']: r['best']['val_ppl'] for r in groups[label_of(v, groups)]} for v in versus.groups())
                    assert stated[0] == f'{paired(x, y)[2]:.2g}', (doc, line)
                checked += 1
    assert checked >= 2  # the README has tables about these runs, or the test says nothing


def test_the_readme_answer_table_says_what_the_runs_say():
    """The first table of the README, row by row, recomputed from the committed runs."""
    from compare import mean_std, welch
    stage4, gpu, recipes, stage6 = groups_of('stage4'), groups_of('gpu'), groups_of('recipes'), groups_of('stage6')
    expected = [  # (attention runs, Grassmann runs, Welch's p shown)
        (stage4['attention_post'], stage4['grassmann_pre_all_learned_sub4_selective'], True),
        (stage4['attention_post'], stage4['grassmann_pre_all_learned_sub4'], True),
        (stage4['attention_pre'], stage4['grassmann_pre_all_learned_sub4_selective'], False),
        (stage6['attention_post'], stage6['grassmann_pre_all_learned_sub4_unnormalised'], True),
        (stage6['attention_post'], stage6['grassmann_pre_all_learned_sub4_unnormalised_attn3'], True),
        (stage6['attention_post'], stage6['grassmann_pre_all_learned_sub4_unnormalised_zconv4'], True),
        (recipes['ours_warmup_attention'], recipes['ours_warmup_grassmann'], False),
        (gpu['paper_attention_l6'], gpu['paper_grassmann_l6'], False),
        (gpu['paper_attention_l6'], gpu['study_grassmann_pre_all_learned'], False),
    ]
    text = open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read()
    table = next(b for b in text.split('## The answer so far')[1].split('\n\n') if b.startswith('| '))
    rows = table.splitlines()[2:]
    assert len(rows) == len(expected) + 2  # and the two publications' rows, quoted as published
    for row, (att, gra, with_p) in zip(rows, expected):
        cells = [c.strip() for c in row.strip().strip('|').split('|')]
        a, g = [r['best']['val_ppl'] for r in att], [r['best']['val_ppl'] for r in gra]
        gap = f"{(statistics.mean(g) - statistics.mean(a)) / statistics.mean(a):+.1%}"
        assert cells[4] == str(len(g)) and cells[5:7] == [mean_std(a), mean_std(g)], row
        assert cells[7] == gap + (f" (p = {welch(g, a)[2]:.2g})" if with_p else ''), row
    assert [c.strip() for c in rows[-2].split('|')[6:9]] == ['248.4', '275.7', '+11.0%']
    assert [c.strip() for c in rows[-1].split('|')[6:9]] == ['238.71', '321.05', '+34.5%']
