"""
bench.py end to end on a tiny sweep: every row it promises, in the table, the JSON and the figure; and
the parts of it that a tiny CPU sweep cannot show (its clock, its GPU memory figure).

Usage: python -m pytest -q test_bench.py
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest
import torch

import bench
from hardware import auto_dtype, device_name

ROOT = os.path.dirname(os.path.abspath(__file__))


def run_bench(tmp_path, *args):
    cmd = [sys.executable, os.path.join(ROOT, 'bench.py'), *args]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p, time.perf_counter() - t0


def test_bench_writes_rows_table_and_plot(tmp_path):
    # the space-separated form of every argument, as argparse allows it: the per-length children must get it too
    p, wall = run_bench(tmp_path, '--seq_lens', '16,32', '--tokens', '64', '--repeats', '1', '--device', 'cpu',
                        '--json', str(tmp_path / 'bench.json'), '--plot', str(tmp_path / 'bench.png'))
    rows = json.load(open(tmp_path / 'bench.json'))
    whats = ('train_step', 'forward', 'mixer_fwd', 'mixer_fwdbwd')
    assert sorted((r['mixer'], r['seq_len'], r['what']) for r in rows) == sorted(
        (m, T, w) for m in ('attention', 'grassmann') for T in (16, 32) for w in whats)
    head = subprocess.run(['git', '-C', ROOT, 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
    for r in rows:
        assert r['batch_size'] * r['seq_len'] == 64
        assert r['commit']['commit'] == head and re.fullmatch(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+', r['time'])  # what made the row, when
        # 64 tokens a call (the command line's), in r['ms'] milliseconds; each call ran twice (first + 1 repeat)
        assert r['tokens_per_s'] == pytest.approx(64 / (r['ms'] / 1000), rel=1e-9)
        assert 0 < 2 * r['ms'] / 1000 < wall
        # on a CPU, memory is what backward keeps: none for forward-only calls
        assert (r['peak_mem_mb'] is None) == (r['what'] in ('forward', 'mixer_fwd'))
    for what in whats:
        assert f'\n{what}:' in p.stdout
    assert 'targets:' in p.stdout
    assert f"{auto_dtype('cpu')} (auto)" in p.stdout and {r['dtype'] for r in rows} == {auto_dtype('cpu')}
    assert {r['device'] for r in rows} == {device_name('cpu')} and p.stdout.startswith(device_name('cpu') + ', torch')
    assert (tmp_path / 'bench.png').stat().st_size > 0



def test_bench_measures_the_partners_when_asked(tmp_path):
    """--partners reaches the Grassmann model of every per-length child (and only it), in training and decoding."""
    p, _ = run_bench(tmp_path, '--partners=selective', '--seq_lens=16,80', '--tokens=160', '--repeats=1', '--device=cpu',
                     f'--json={tmp_path / "bench.json"}', '--plot=')
    rows = json.load(open(tmp_path / 'bench.json'))
    assert {(r['mixer'], r['partners']) for r in rows} == {('attention', 'none'), ('grassmann', 'selective')}
    assert {r['seq_len'] for r in rows} == {16, 80} and 'Grassmann partners=selective' in p.stdout

def test_bench_generate_times_both_models_at_each_length(tmp_path):
    p, wall = run_bench(tmp_path, '--generate', '--gen_lens=32,96', '--gen_batches=1', '--recompute_max=32', '--repeats=1',
                        '--device=cpu', '--dtype=float32', '--json', str(tmp_path / 'gen.json'), '--plot=')
    rows = json.load(open(tmp_path / 'gen.json'))
    assert sorted((r['mixer'], r['what'], r['gen_len']) for r in rows) == sorted(
        [(m, 'decode', n) for m in ('attention', 'grassmann') for n in (32, 96)] + [(m, 'decode_recompute', 32) for m in ('attention', 'grassmann')])
    state = {(r['mixer'], r['gen_len']): r['peak_mem_mb'] for r in rows if r['what'] == 'decode'}
    # attention keeps every key and value; the Grassmann model its ring of max(lags) reduced vectors, at any length
    assert state['grassmann', 32] == state['grassmann', 96] == 6 * 16 * 32 * 4 / 2**20
    for n in (32, 96):  # 6 layers x (k, v) x n positions x 256 numbers in float32: the used part of its buffer
        assert state['attention', n] == 6 * 2 * n * 256 * 4 / 2**20
    assert all(0 < r['ms'] < 1000 * wall for r in rows)
    assert 'grassmann/attention decode time per token at batch 1, every length' in p.stdout


@pytest.mark.parametrize('keys, per_layer', [
    ({}, lambda n: 16 * 8),  # the ring: max(lags) reduced vectors of H·r = 8 numbers
    ({'partners': 'ema'}, lambda n: 16 * 8 + 3 * 8),  # and K = 3 summaries
    ({'z_conv': 4}, lambda n: 16 * 8 + 3 * 8),  # and the convolution's last K - 1 inputs
    ({'attn_layers': (1,)}, None),  # a hybrid: block 1 keeps n keys and n values of d = 16 numbers
])
def test_decoding_state_counts_everything_a_step_keeps(keys, per_layer):
    """state_mb is what a stage-6 verdict quotes as the constant decoding state: every tensor the cache keeps
    between steps (not the weights a Grassmann layer caches for its fused step)."""
    from model import GPT, GPTConfig
    cfg = GPTConfig(mixer='grassmann', n_layer=2, n_head=2, n_embd=16, vocab_size=32, block_size=64, reduced_dim=8,
                    dropout=0.0, pos_emb=False, **keys)
    model, cache = GPT(cfg).eval(), None
    with torch.no_grad():
        cache = model.new_cache()
        for n in range(1, 41):
            model(torch.zeros(1, 1, dtype=torch.long), cache=cache)
            if n in (20, 40):
                floats = 16 * 8 + 2 * n * 16 if per_layer is None else 2 * per_layer(n)
                assert bench.state_mb(cache) == floats * 4 / 2**20, (keys, n)


def test_bench_generate_decodes_a_study_arm(tmp_path):
    """--generate --grassmann: the arm decodes (here the hybrid of stage 6), so its state is what it keeps: five
    Grassmann layers' rings (16 vectors of H·r = 64) and one attention block's keys and values."""
    arm = ','.join(os.path.join(ROOT, 'config', f) for f in ('study/grassmann_pre_all_learned_sub4.py', 'stage6/attn3.py'))
    p, _ = run_bench(tmp_path, '--generate', f'--grassmann={arm}', '--gen_lens=32,64', '--gen_batches=1', '--recompute_max=0',
                     '--repeats=1', '--device=cpu', '--dtype=float32', '--json', str(tmp_path / 'gen.json'), '--plot=')
    rows = json.load(open(tmp_path / 'gen.json'))
    state = {(r['mixer'], r['gen_len']): r['peak_mem_mb'] for r in rows if r['what'] == 'decode'}
    assert {(r['mixer'], r['arm']) for r in rows} == {('attention', None), ('grassmann', arm)}
    for n in (32, 64):
        assert state['grassmann', n] == (5 * 16 * 64 + 2 * n * 256) * 4 / 2**20
        assert state['attention', n] == 6 * 2 * n * 256 * 4 / 2**20
    assert '[not met] grassmann decoding state at batch 1' in p.stdout  # a hybrid's grows


def test_median_ms_is_milliseconds_of_the_call():
    ms = bench.median_ms(lambda: time.sleep(0.02), 'cpu', warmup=0, repeats=3)
    assert 19 <= ms < 20_000  # milliseconds, not seconds (0.02); a busy machine may sleep much longer


def test_auto_dtype_takes_bf16_on_a_cpu_only_where_it_is_fast(monkeypatch):
    import hardware
    monkeypatch.setattr(hardware, 'cpu_has_fast_bf16', lambda: False)
    assert auto_dtype('cpu') == 'float32'
    monkeypatch.setattr(hardware, 'cpu_has_fast_bf16', lambda: True)
    assert auto_dtype('cpu') == 'bfloat16' and auto_dtype('mps') == 'float32'


def test_gpu_memory_of_a_train_step_covers_the_whole_step(monkeypatch):
    """On a GPU the figure is the peak of the call itself (backward included), not of a forward pass."""
    peak = {'now': 0, 'max': 0}

    def allocate(mb):
        peak['now'] += mb * 2**20
        peak['max'] = max(peak['max'], peak['now'])
    for name, fn in (('synchronize', lambda: None), ('reset_peak_memory_stats', lambda: peak.update(max=peak['now'])),
                     ('memory_allocated', lambda: peak['now']), ('max_memory_allocated', lambda: peak['max'])):
        monkeypatch.setattr(torch.cuda, name, fn)
    step = lambda: (allocate(10), allocate(30), allocate(-40))  # forward 10 MB, backward 30 MB more, then freed
    forward_only = lambda: (allocate(10), allocate(-10))
    assert bench.memory_mb(step, forward_only, 'cuda') == 40


def test_targets_hold_grassmann_to_attention_at_every_length():
    def row(mixer, T, ms, mem, what='mixer_fwdbwd'):
        return dict(mixer=mixer, seq_len=T, batch_size=1024 // T, what=what, ms=ms, peak_mem_mb=mem)
    rows = [row('attention', 128, 10, 20), row('grassmann', 128, 9, 16),  # faster and smaller: met
            row('attention', 1024, 20, 20), row('grassmann', 1024, 21, 16)]  # slower at one length: not met
    targets = dict(bench.check_targets(rows))
    assert targets['mixer_fwdbwd at 128: Grassmann/attention time 0.90 <= 1.00'] is True
    assert targets['mixer_fwdbwd at 128: Grassmann/attention memory 0.80 <= 1.00'] is True
    assert targets['mixer_fwdbwd at 1024: Grassmann/attention time 1.05 <= 1.00'] is False
    rows[1]['peak_mem_mb'] = 21  # larger at one length: not met
    assert dict(bench.check_targets(rows))['mixer_fwdbwd at 128: Grassmann/attention memory 1.05 <= 1.00'] is False

    def decode(mixer, n, ms):
        return dict(mixer=mixer, what='decode', gen_len=n, batch_size=1, ms=ms, peak_mem_mb=0.1)
    rows = [decode('attention', 128, 5), decode('grassmann', 128, 6), decode('attention', 512, 7), decode('grassmann', 512, 6)]
    targets = dict(bench.check_generate_targets(rows))
    assert targets['grassmann/attention decode time per token at batch 1, every length: at most 1.20 (at 128) <= 1.00'] is False
    rows[1]['ms'] = 4.9
    assert dict(bench.check_generate_targets(rows))[
        'grassmann/attention decode time per token at batch 1, every length: at most 0.98 (at 128) <= 1.00'] is True


def test_bench_measures_a_study_arm_from_its_config_files(tmp_path):
    """--grassmann: the arm's model keys make the Grassmann side (here the sub4 arm with a convolution of z),
    the attention side shares its vocabulary and sizes; the rows say which arm and how many parameters."""
    arm = ','.join(os.path.join(ROOT, 'config', f) for f in ('study/grassmann_pre_all_learned_sub4.py', 'stage6/zconv4.py'))
    p, _ = run_bench(tmp_path, f'--grassmann={arm}', '--seq_lens=16,32', '--tokens=32', '--repeats=1', '--device=cpu',
                     '--dtype=float32', f'--json={tmp_path / "bench.json"}', '--plot=')
    rows = json.load(open(tmp_path / 'bench.json'))
    assert {(r['mixer'], r['arm']) for r in rows} == {('attention', None), ('grassmann', arm)}
    for T in (16, 32):  # the position table follows the length; the rest is the arm's: 12,643,108 against 12,585,472
        params = {r['mixer']: r['params'] for r in rows if r['seq_len'] == T}
        assert params['grassmann'] - params['attention'] == 12_643_108 - 12_585_472
        assert params['attention'] == 12_585_472 + (max(T, 17) - 128) * 256  # BERT's vocabulary, a table of max(T, 17) rows
    assert f'Grassmann arm {arm}' in p.stdout
