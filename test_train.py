"""
The training pipeline end to end on CPU: prepare.py on the offline WikiText-2 copies (a folder, and a
zip served over HTTP on 127.0.0.1), its bad inputs, the configurator, train.py (checkpoints,
results.json, resume, NaN stop, wandb offline, two-process DDP) and sample.py.

Usage: python -m pytest -q test_train.py   (reads ../shared/data, or $GRASSMANN_SHARED_DATA)
"""
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile

import numpy as np
import pytest
import torch

from configurator import configure

ROOT = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get('GRASSMANN_SHARED_DATA', os.path.join(ROOT, '..', 'shared', 'data'))
TOKENS = os.path.join(SHARED, 'wikitext-2')
if not os.path.isdir(TOKENS):
    pytest.fail(f"offline WikiText-2 copy not found at {TOKENS}: set GRASSMANN_SHARED_DATA", pytrace=False)
ENV = dict(os.environ, TIKTOKEN_CACHE_DIR=os.path.join(SHARED, 'tiktoken_cache'), PYTHONUNBUFFERED='1',
           WANDB_MODE='offline', WANDB_SILENT='true')
# a tiny model and a sliced data set, so that each run takes seconds
TINY = ['--dataset=slice', '--n_layer=1', '--n_embd=32', '--n_head=2', '--reduced_dim=8', '--block_size=32',
        '--batch_size=4', '--compile=False', '--device=cpu', '--dtype=float32', '--log_interval=2']


def run(script, *args, cwd=ROOT, check=True, timeout=600):
    cmd = [sys.executable, os.path.join(ROOT, script), *args]
    p = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp('prepared') / 'wikitext2'
    p = run('prepare.py', '--src', TOKENS, '--variant', 'tokens', '--out', str(out))
    return out, p.stdout


@pytest.fixture(scope='module')
def workdir(prepared, tmp_path_factory):
    """A folder with data/slice: the first tokens of each prepared split, for fast training runs."""
    work = tmp_path_factory.mktemp('work')
    (work / 'data' / 'slice').mkdir(parents=True)
    for split, n in (('train', 20_000), ('val', 3_300), ('test', 3_300)):
        np.fromfile(prepared[0] / f'{split}.bin', dtype=np.uint16)[:n].tofile(work / 'data' / 'slice' / f'{split}.bin')
    shutil.copy(prepared[0] / 'meta.json', work / 'data' / 'slice' / 'meta.json')
    return work


def sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()

# -----------------------------------------------------------------------------
# prepare.py


def test_prepare_from_folder_gives_the_known_token_counts(prepared):
    out, stdout = prepared
    meta = json.load(open(out / 'meta.json'))
    counts = {s: meta['splits'][s]['tokens'] for s in ('train', 'val', 'test')}
    assert counts == {'train': 2_448_382, 'val': 258_659, 'test': 295_877}
    for split, n in counts.items():
        assert os.path.getsize(out / f'{split}.bin') == 2 * n  # flat uint16
    assert meta['tokenizer'] == 'gpt2' and meta['vocab_size'] == 50257 and meta['variant'] == 'tokens'
    assert meta['splits']['val']['bytes'] == 1_121_681
    assert meta['splits']['val']['sha256'] == 'f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8'
    text = open(os.path.join(TOKENS, 'wiki.valid.tokens'), encoding='utf-8').read()
    assert meta['splits']['val']['words'] == len(text.split())
    import tiktoken
    os.environ.setdefault('TIKTOKEN_CACHE_DIR', ENV['TIKTOKEN_CACHE_DIR'])
    ids = np.fromfile(out / 'train.bin', dtype=np.uint16)
    assert tiktoken.get_encoding('gpt2').decode(ids[:12].tolist()).startswith(' \n = Valkyria Chronicles III = ')
    assert not [f for f in os.listdir(out) if f.endswith('.tmp')]


@pytest.fixture
def http_server(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_prepare_from_zip_over_http_matches_the_folder(prepared, http_server, tmp_path):
    folder, url = http_server
    with zipfile.ZipFile(folder / 'wikitext-2-v1.zip', 'w', zipfile.ZIP_DEFLATED) as zf:
        for split in ('train', 'valid', 'test'):
            zf.write(os.path.join(TOKENS, f'wiki.{split}.tokens'), f'wikitext-2/wiki.{split}.tokens')
    out = tmp_path / 'from_zip'
    p = run('prepare.py', '--variant', 'tokens', '--url', f'{url}/wikitext-2-v1.zip', '--out', str(out))
    assert 'downloading' in p.stderr
    for f in ('train.bin', 'val.bin', 'test.bin', 'meta.json'):
        assert sha(out / f) == sha(prepared[0] / f)


def assert_fails_and_keeps(tmp_path, args, *phrases):
    """prepare.py must exit non-zero with a message holding `phrases`, leaving the output untouched."""
    out = tmp_path / 'out'
    out.mkdir(exist_ok=True)
    (out / 'train.bin').write_bytes(b'old data')
    p = run('prepare.py', '--variant', 'tokens', '--out', str(out), *args, check=False)
    assert p.returncode != 0
    for phrase in phrases:
        assert phrase in p.stderr, p.stderr
    assert sorted(os.listdir(out)) == ['train.bin'] and (out / 'train.bin').read_bytes() == b'old data'


def test_prepare_without_network_points_to_src(tmp_path):
    assert_fails_and_keeps(tmp_path, ['--url', 'http://127.0.0.1:9/wikitext-2-v1.zip'], 'could not download', '--src')


def test_prepare_names_the_file_with_a_wrong_checksum(tmp_path):
    src = tmp_path / 'src'
    shutil.copytree(TOKENS, src)
    with open(src / 'wiki.valid.tokens', 'a') as f:
        f.write('x')
    actual = sha(src / 'wiki.valid.tokens')
    assert_fails_and_keeps(tmp_path, ['--src', str(src)], 'wiki.valid.tokens', 'f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8', actual)


def test_prepare_names_a_missing_split(tmp_path):
    src = tmp_path / 'src'
    shutil.copytree(TOKENS, src)
    os.remove(src / 'wiki.train.tokens')
    assert_fails_and_keeps(tmp_path, ['--src', str(src)], 'wiki.train.tokens not found')


@pytest.mark.parametrize('damage', ('truncated', 'not_a_zip'))
def test_prepare_refuses_a_broken_archive(tmp_path, damage):
    good = tmp_path / 'good.zip'
    with zipfile.ZipFile(good, 'w', zipfile.ZIP_DEFLATED) as zf:
        for split in ('train', 'valid', 'test'):
            zf.write(os.path.join(TOKENS, f'wiki.{split}.tokens'), f'wiki.{split}.tokens')
    bad = tmp_path / 'bad.zip'
    bad.write_bytes(good.read_bytes()[:good.stat().st_size // 2] if damage == 'truncated' else b'<html>403</html>')
    assert_fails_and_keeps(tmp_path, ['--src', str(bad)], 'not a readable zip archive')

# -----------------------------------------------------------------------------
# the configurator


def test_configurator_overrides_in_order_and_parses_types(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text("batch_size = 8\nlags = [1, 3]\nwandb_run_name = 'from-file'\nlearning_rate = 1\n")
    defaults = dict(batch_size=32, lags=(1, 2), wandb_run_name=None, learning_rate=1e-3, compile=True, mixer='grassmann')
    cfg = configure(defaults, [str(cfg_file), '--batch_size=16', '--compile=False', '--mixer=attention', '--lags=(4,8)'])
    assert cfg == dict(batch_size=16, lags=(4, 8), wandb_run_name='from-file', learning_rate=1.0, compile=False, mixer='attention')


@pytest.mark.parametrize('argv, message', [
    (['--batch_sise=8'], "unknown config key 'batch_sise' (did you mean 'batch_size'?)"),
    (['--batch_size=big'], "batch_size='big' is a str, but batch_size takes a int"),
    (['--compile=1'], 'compile=1 is a int, but compile takes a bool'),
    (['--lags=1'], 'lags=1 is a int, but lags takes a tuple'),
    (['config/nope.py'], "config file 'config/nope.py' not found"),
    (['--batch_size'], 'must be --key=value'),
])
def test_configurator_errors_name_the_problem(argv, message):
    with pytest.raises(ValueError) as e:
        configure(dict(batch_size=32, compile=True, lags=(1, 2)), argv)
    assert message in str(e.value)


def test_configurator_rejects_unknown_keys_in_config_files(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text('learning_rat = 0.1\n')
    with pytest.raises(ValueError, match=r"cfg.py: unknown config key 'learning_rat' \(did you mean 'learning_rate'\?\)"):
        configure(dict(learning_rate=1e-3), [str(cfg_file)])


def test_train_reports_config_errors_and_missing_data(workdir):
    p = run('train.py', '--n_layers=2', cwd=workdir, check=False)
    assert p.returncode != 0 and "did you mean 'n_layer'" in p.stderr
    p = run('train.py', '--dataset=nowhere', cwd=workdir, check=False)
    assert p.returncode != 0 and 'data/nowhere/meta.json not found' in p.stderr and 'prepare.py' in p.stderr

# -----------------------------------------------------------------------------
# train.py


def test_short_run_writes_checkpoints_and_results(workdir):
    p = run('train.py', *TINY, '--out_dir=out-short', '--max_iters=6', '--eval_interval=3', cwd=workdir)
    out = workdir / 'out-short'
    assert 'val ppl' in p.stdout and 'tok/s' in p.stdout and 'left ~' in p.stdout
    results = json.load(open(out / 'results.json'))
    assert [h['iter'] for h in results['history']] == [3, 6]
    best = min(results['history'], key=lambda h: h['val_loss'])
    assert results['best']['val_loss'] == best['val_loss'] and results['best']['iter'] == best['iter']
    assert results['n_params'] > 0 and results['test']['ppl'] > 1 and results['dtype'] == 'float32'
    for key in ('train_loss', 'val_ppl', 'lr', 'tokens_per_s', 'elapsed_s', 'epoch'):
        assert key in results['history'][0]
    ckpt = torch.load(out / 'ckpt.pt', weights_only=False)
    last = torch.load(out / 'last.pt', weights_only=False)
    assert last['iter_num'] == 6 and ckpt['iter_num'] == best['iter']
    assert not [k for k in last['model'] if k.startswith('_orig_mod.')]
    for key in ('optimizer', 'scaler', 'model_args', 'epoch', 'step_in_epoch', 'best', 'config', 'rng'):
        assert key in last
    # evaluation covers every block: 3,300 tokens are 100 blocks of 33, so 3,200 targets
    p = run('train.py', '--out_dir=out-short', '--init_from=resume', '--eval_only=True', '--device=cpu',
            '--dtype=float32', '--dataset=slice', '--block_size=32', '--compile=False', cwd=workdir)
    assert f"val loss {results['best']['val_loss']:.4f}" in p.stdout
    assert f"test loss {results['test']['loss']:.4f}" in p.stdout


def test_resumed_run_ends_like_an_uninterrupted_one(workdir):
    common = [*TINY, '--eval_interval=4', '--lr_decay_iters=12', '--dropout=0.1']
    run('train.py', *common, '--out_dir=out-full', '--max_iters=12', cwd=workdir)
    run('train.py', *common, '--out_dir=out-resumed', '--max_iters=4', cwd=workdir)  # stops at iteration 4
    p = run('train.py', *common, '--out_dir=out-resumed', '--max_iters=12', '--init_from=resume', cwd=workdir)
    assert 'resuming from out-resumed/last.pt at iteration 4' in p.stdout
    full, resumed = (torch.load(workdir / d / 'last.pt', weights_only=False) for d in ('out-full', 'out-resumed'))
    assert full['iter_num'] == resumed['iter_num'] == 12
    for k, v in full['model'].items():
        assert torch.equal(v, resumed['model'][k]), k
    a, b = (json.load(open(workdir / d / 'results.json')) for d in ('out-full', 'out-resumed'))
    assert [h['val_loss'] for h in a['history']] == [h['val_loss'] for h in b['history']]
    assert [h['train_loss'] for h in a['history']] == [h['train_loss'] for h in b['history']]
    assert a['best'] == b['best'] and a['test'] == b['test']


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(workdir):
    common = [*TINY, '--out_dir=out-nan', '--eval_interval=2']
    run('train.py', *common, '--max_iters=2', cwd=workdir)
    before = {f: sha(workdir / 'out-nan' / f) for f in ('last.pt', 'ckpt.pt')}
    p = run('train.py', *common, '--max_iters=40', '--init_from=resume', '--learning_rate=1e30',
            '--grad_clip=0.0', cwd=workdir, check=False)
    assert p.returncode == 1
    assert 'is nan at iteration' in p.stderr or 'is inf at iteration' in p.stderr, p.stderr
    assert {f: sha(workdir / 'out-nan' / f) for f in before} == before


def test_wandb_offline_run_is_written(workdir):
    run('train.py', *TINY, '--out_dir=out-wandb', '--max_iters=2', '--eval_interval=2', '--wandb_log=True', cwd=workdir)
    runs = [d for d in os.listdir(workdir / 'out-wandb' / 'wandb') if d.startswith('offline-run-')]
    assert len(runs) == 1
    assert any(f.endswith('.wandb') for f in os.listdir(workdir / 'out-wandb' / 'wandb' / runs[0]))


def test_two_gloo_processes_end_with_identical_weights(workdir):
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
           os.path.join(ROOT, 'train.py'), *TINY, '--out_dir=out-ddp', '--max_iters=4', '--eval_interval=2']
    p = subprocess.run(cmd, cwd=workdir, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    shas = sorted(line.split()[-1] for line in p.stdout.splitlines() if 'final weights sha1' in line)
    assert len(shas) == 2 and shas[0] == shas[1]
    results = json.load(open(workdir / 'out-ddp' / 'results.json'))
    assert results['world_size'] == 2 and len(results['history']) == 2

# -----------------------------------------------------------------------------
# sample.py


def test_sample_prints_continuations(workdir):
    run('train.py', *TINY, '--out_dir=out-sample', '--max_iters=2', '--eval_interval=2', cwd=workdir)
    p = run('sample.py', '--out_dir=out-sample', '--start=The history of', '--num_samples=2',
            '--max_new_tokens=40', '--device=cpu', cwd=workdir)
    samples = p.stdout.split('---------------\n')
    assert len(samples) == 3 and all(s.startswith('The history of') and len(s) > len('The history of') for s in samples[:2])


def test_sample_explains_a_missing_checkpoint_and_an_empty_prompt(workdir):
    p = run('sample.py', '--out_dir=nowhere', cwd=workdir, check=False)
    assert p.returncode != 0 and 'nowhere/ckpt.pt not found' in p.stderr
    (workdir / 'empty.txt').write_text('')
    p = run('sample.py', '--out_dir=nowhere', '--start=FILE:empty.txt', cwd=workdir, check=False)
    assert p.returncode != 0 and 'not found' in p.stderr  # the checkpoint is checked first
    run('train.py', *TINY, '--out_dir=out-empty', '--max_iters=2', '--eval_interval=2', cwd=workdir)
    p = run('sample.py', '--out_dir=out-empty', '--start=FILE:empty.txt', cwd=workdir, check=False)
    assert p.returncode != 0 and 'the prompt is empty' in p.stderr
