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


MIXER_KEYS = {'mixer', 'reduced_dim', 'lags', 'lag_schedule', 'plucker_eps', 'n_head'}


@pytest.mark.parametrize('name', ('wt2', 'wt2_l12', 'smoke'))
def test_paired_configs_differ_only_in_the_mixer(name):
    def settings(mixer):
        scope = {}
        exec(open(os.path.join(ROOT, 'config', f'{mixer}_{name}.py')).read(), scope)
        return {k: v for k, v in scope.items() if not k.startswith('_')}
    a, g = settings('attention'), settings('grassmann')
    differ = {k for k in a.keys() | g.keys() if a.get(k) != g.get(k)}
    assert differ <= MIXER_KEYS | {'out_dir', 'wandb_run_name'}, differ
    assert a['mixer'] == 'attention' and g['mixer'] == 'grassmann'


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
    assert results['eval_stride'] == 32 and {'bpb', 'word_ppl'} <= results['test'].keys()
    assert {'val_bpb', 'val_word_ppl'} <= results['best'].keys()
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
    p = run('train.py', '--out_dir=out-short', '--init_from=resume', '--eval_only=True', '--device=cpu', '--eval_stride=8',
            '--dtype=float32', '--dataset=slice', '--block_size=32', '--compile=False', cwd=workdir)
    assert 'eval_stride 8' in p.stdout and f"val loss {results['best']['val_loss']:.4f}" not in p.stdout


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
    # streamed, or recomputed at every token, the same seed gives the same text
    outs = [run('sample.py', '--out_dir=out-sample', '--start=The history of', '--num_samples=1', '--max_new_tokens=40',
                '--device=cpu', *extra, cwd=workdir).stdout for extra in ([], ['--stream=True'], ['--incremental=False'])]
    assert outs[0] == outs[1] == outs[2] and outs[0].startswith(samples[0])


def test_sample_explains_a_missing_checkpoint_and_an_empty_prompt(workdir):
    p = run('sample.py', '--out_dir=nowhere', cwd=workdir, check=False)
    assert p.returncode != 0 and 'nowhere/ckpt.pt not found' in p.stderr
    (workdir / 'empty.txt').write_text('')
    p = run('sample.py', '--out_dir=nowhere', '--start=FILE:empty.txt', cwd=workdir, check=False)
    assert p.returncode != 0 and 'not found' in p.stderr  # the checkpoint is checked first
    run('train.py', *TINY, '--out_dir=out-empty', '--max_iters=2', '--eval_interval=2', cwd=workdir)
    p = run('sample.py', '--out_dir=out-empty', '--start=FILE:empty.txt', cwd=workdir, check=False)
    assert p.returncode != 0 and 'the prompt is empty' in p.stderr

# -----------------------------------------------------------------------------
# make reproduce


def test_make_reproduce_smoke_trains_every_seed_and_compares(workdir, tmp_path):
    args = ['make', '-s', '-C', ROOT, 'reproduce', 'SMOKE=1', 'SEEDS=1 2', f'PY={sys.executable}', 'DATA_DEP=',
            f'OUT={tmp_path / "out"}', f'RESULTS={tmp_path / "results"}',
            f'TRAIN_ARGS=--dataset={workdir / "data" / "slice"} --max_iters=4 --eval_interval=2 --block_size=32 --batch_size=4 --log_interval=2']
    p = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    for mixer in ('attention', 'grassmann'):
        for seed in (1, 2):
            assert json.load(open(tmp_path / 'out' / 'smoke' / f'{mixer}-seed{seed}' / 'results.json'))['config']['seed'] == seed
    text = (tmp_path / 'results' / 'smoke' / 'results.md').read_text()
    assert '| attention |' in text and '| grassmann |' in text and "Welch's t" in text

# -----------------------------------------------------------------------------
# the paper's units: BERT WordPiece and config/paper_*.py

BERT_VOCAB = os.path.join(SHARED, 'bert-base-uncased', 'vocab.txt')


def test_bert_tokenizer_matches_the_published_counts():
    from data import get_tokenizer
    encode, decode, n = get_tokenizer('bert-base-uncased', open(BERT_VOCAB, encoding='utf-8').read())
    assert n == 30522
    assert encode('Hello world, this is WikiText.') == [7592, 2088, 1010, 2023, 2003, 15536, 23615, 10288, 2102, 1012]
    assert decode(encode('The European lobster is a species of clawed lobster.')) == 'the european lobster is a species of clawed lobster.'
    lines = open(os.path.join(SHARED, 'wikitext-2-raw', 'wiki.valid.raw'), encoding='utf-8').read().splitlines()[:2000]
    ids = [i for line in lines for i in encode(line)]
    assert len(ids) == 122_175 and ids.count(100) == 17  # 100: [UNK]
    assert len(encode('\n'.join(lines))) == 122_175  # one string, as prepare.py encodes a split


@pytest.fixture(scope='module')
def prepared_bert(tmp_path_factory):
    out = tmp_path_factory.mktemp('prepared_bert') / 'wikitext2_bert'
    run('prepare.py', '--tokenizer', 'bert', '--vocab', BERT_VOCAB, '--src', TOKENS, '--variant', 'tokens', '--out', str(out))
    return out


def test_prepare_bert_writes_wordpiece_memmaps(prepared_bert):
    meta = json.load(open(prepared_bert / 'meta.json'))
    assert meta['tokenizer'] == 'bert-base-uncased' and meta['vocab_size'] == 30522
    assert {s: meta['splits'][s]['tokens'] for s in ('train', 'val', 'test')} == {'train': 2_392_641, 'val': 260_172, 'test': 299_307}
    assert sha(prepared_bert / 'vocab.txt') == sha(BERT_VOCAB)
    ids = np.fromfile(prepared_bert / 'val.bin', dtype=np.uint16)
    assert len(ids) == 260_172 and ids.max() < 30522


def test_prepare_bert_refuses_a_wrong_vocabulary(tmp_path):
    bad = tmp_path / 'vocab.txt'
    bad.write_text(open(BERT_VOCAB, encoding='utf-8').read().replace('[unused0]', '[mine]'))
    assert_fails_and_keeps(tmp_path, ['--tokenizer', 'bert', '--vocab', str(bad), '--src', TOKENS],
                           'vocab.txt: sha256 mismatch', '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3')


@pytest.mark.parametrize('name, n_params', [('paper_attention_l6', 12_585_472), ('paper_grassmann_l6', 12_607_168),
                                            ('paper_grassmann_l6_lags888', 12_607_168)])
def test_paper_configs_have_the_paper_parameter_counts(name, n_params):
    from dataclasses import asdict
    from model import GPT, GPTConfig
    defaults = dict(asdict(GPTConfig()), out_dir='out', wandb_run_name=None, dataset='wikitext2', batch_size=32, epochs=30)
    cfg = configure(defaults, [os.path.join(ROOT, 'config', f'{name}.py')])
    assert (cfg['n_layer'], cfg['block_size'], cfg['batch_size'], cfg['epochs']) == (6, 128, 32, 30)
    model = GPT(GPTConfig(**{k: cfg[k] for k in asdict(GPTConfig())}))
    assert model.num_params() == n_params
    if 'grassmann' in name:
        lags = (1, 2, 4, 8, 8, 8) if 'lags888' in name else (1, 2, 4, 8, 12, 16)
        assert [b.mixer.lags for b in model.transformer.h] == [(l,) for l in lags]


def test_paper_config_trains_on_cpu_and_samples_in_wordpiece(prepared_bert, tmp_path):
    data = tmp_path / 'data' / 'bert_slice'
    data.mkdir(parents=True)
    for split, n in (('train', 20_000), ('val', 3_000), ('test', 3_000)):
        np.fromfile(prepared_bert / f'{split}.bin', dtype=np.uint16)[:n].tofile(data / f'{split}.bin')
    for f in ('meta.json', 'vocab.txt'):
        shutil.copy(prepared_bert / f, data / f)
    run('train.py', os.path.join(ROOT, 'config', 'paper_grassmann_l6.py'), '--dataset=bert_slice', '--out_dir=out-paper',
        '--max_iters=2', '--eval_interval=2', '--compile=False', '--device=cpu', cwd=tmp_path)
    results = json.load(open(tmp_path / 'out-paper' / 'results.json'))
    assert results['n_params'] == 12_607_168 and results['tokenizer'] == 'bert-base-uncased'
    p = run('sample.py', '--out_dir=out-paper', '--start=The History of', '--num_samples=1', '--max_new_tokens=10',
            '--device=cpu', cwd=tmp_path)
    assert p.stdout.startswith('the history of ')
