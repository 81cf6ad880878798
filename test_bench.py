"""
bench.py end to end on a tiny sweep: every row it promises, in the table, the JSON and the figure.

Usage: python -m pytest -q test_bench.py
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def test_bench_writes_rows_table_and_plot(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, 'bench.py'), '--seq_lens=16,32', '--tokens=64', '--repeats=1',
           '--device=cpu', f'--json={tmp_path / "bench.json"}', f'--plot={tmp_path / "bench.png"}']
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = json.load(open(tmp_path / 'bench.json'))
    whats = ('train_step', 'forward', 'mixer_fwd', 'mixer_fwdbwd')
    assert sorted((r['mixer'], r['seq_len'], r['what']) for r in rows) == sorted(
        (m, T, w) for m in ('attention', 'grassmann') for T in (16, 32) for w in whats)
    for r in rows:
        assert r['ms'] > 0 and r['tokens_per_s'] == r['batch_size'] * r['seq_len'] / r['ms'] * 1000
        assert r['batch_size'] * r['seq_len'] == 64
        # on a CPU, memory is what backward keeps: none for forward-only calls
        assert (r['peak_mem_mb'] is None) == (r['what'] in ('forward', 'mixer_fwd'))
    for what in whats:
        assert f'\n{what}:' in p.stdout
    assert 'targets:' in p.stdout
    assert (tmp_path / 'bench.png').stat().st_size > 0
