"""
What a long run meets overnight, on CPU in seconds: a full disk, a second run into the same folder, a
kill in the middle of writing a checkpoint, a broken data folder, a resume on other data, no network
for the tokenizer or for wandb (a damaged checkpoint: test_train.py's
test_a_damaged_checkpoint_is_named_not_a_traceback). Each is answered in one line and loses nothing:
a fault that stops the run exits non-zero, the files keep their last complete versions, and a resume
ends bit for bit like a run that met no fault; no network for wandb does not stop the run at all.

The faults come from the operating system, not from mocks of our code: a file-size limit
(RLIMIT_FSIZE, with SIGXFSZ ignored, so that a write fails with EFBIG as a full disk fails with ENOSPC),
SIGKILL, an flock held by another process, a proxy that refuses connections.

Usage: python -m pytest -q test_faults.py
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from test_train import ENV, ROOT, SLICE_ARGS, TINY, prepared, run, sha, workdir  # noqa: F401 (fixtures)

# train.py with one fault injected at the Nth write of a named file: 'full' lowers the file-size limit
# just before it, 'kill' sends SIGKILL to the process in the middle of it (after 64 KiB of a checkpoint)
LAUNCHER = r'''
import os, resource, runpy, signal, sys
import checkpoints
fault, name, nth, *argv = sys.argv[1:]
write_atomic, seen = checkpoints.write_atomic, []

def faulty(path, write):
    if os.path.basename(path) == name:
        seen.append(path)
        if len(seen) == int(nth) and fault == 'full':
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        if len(seen) == int(nth) and fault == 'kill':
            inner = write

            def write(f):
                class Cut:
                    written = 0

                    def write(self, data):
                        Cut.written += len(data)
                        if Cut.written > (65536 if name.endswith('.pt') else 0):
                            f.flush()
                            os.kill(os.getpid(), signal.SIGKILL)
                        return f.write(data)

                    def flush(self):
                        f.flush()
                inner(Cut())
    return write_atomic(path, write)

checkpoints.write_atomic = faulty
sys.argv = [os.path.join(os.environ['GRASSMANN_ROOT'], 'train.py'), *argv]
runpy.run_path(sys.argv[0], run_name='__main__')
'''
COMMON = [*TINY, '--eval_interval=4', '--lr_decay_iters=12', '--dropout=0.1']


def faulty_run(workdir, tmp_path, fault, name, nth, *args):
    launcher = tmp_path / 'launcher.py'
    launcher.write_text(LAUNCHER)
    return subprocess.run([sys.executable, str(launcher), fault, name, str(nth), *args], cwd=workdir,
                          env=dict(ENV, GRASSMANN_ROOT=ROOT, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=600)


# a learning rate at which the last evaluation is worse than the one before: the best weights are not the last
WORSE_AT_THE_END = ['--learning_rate=3e-2', '--warmup_iters=0']


def uninterrupted(workdir, *args):
    """The run every faulty one must end as: 12 iterations, evaluated and checkpointed every 4."""
    out = workdir / ('out-uninterrupted' + ''.join(a.split('=')[1] for a in args))
    if not (out / 'results.json').exists():
        run('train.py', *COMMON, *args, f'--out_dir={out.name}', '--max_iters=12', cwd=workdir)
    return out


def assert_same_run(a, b):
    """Two run folders hold the same run: weights of both checkpoints, history, best and test, bit for bit."""
    for name in ('last.pt', 'ckpt.pt'):
        x, y = (torch.load(d / name, weights_only=True) for d in (a, b))
        assert x['iter_num'] == y['iter_num'], name
        for k, v in x['model'].items():
            assert torch.equal(v, y['model'][k]), (name, k)
    ra, rb = (json.load(open(d / 'results.json')) for d in (a, b))
    timing = ('tokens_per_s', 'elapsed_s')
    assert [{k: v for k, v in h.items() if k not in timing} for h in ra['history']] == \
           [{k: v for k, v in h.items() if k not in timing} for h in rb['history']]
    assert ra['best'] == rb['best'] and ra['test'] == rb['test'] and ra['completed'] and rb['completed']


def files(folder):
    return {f: sha(folder / f) for f in sorted(os.listdir(folder)) if f != 'train.lock'}


def test_a_full_disk_stops_the_run_in_one_line_keeps_every_file_and_resumes_bit_exactly(workdir, tmp_path):
    out = workdir / 'out-full-disk'
    p = faulty_run(workdir, tmp_path, 'full', 'last.pt', 2, *COMMON, f'--out_dir={out.name}', '--max_iters=12')
    assert p.returncode != 0 and 'Traceback' not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"cannot write last.pt in {out.name}: File too large (the disk is full" in p.stderr, p.stderr
    assert f"--out_dir={out.name} --init_from=resume" in p.stderr
    # the last complete files of iteration 4, and no temporary file holding the space
    assert sorted(files(out)) == ['ckpt.pt', 'last.pt', 'results.json']
    assert torch.load(out / 'last.pt', weights_only=True)['iter_num'] == 4
    assert [h['iter'] for h in json.load(open(out / 'results.json'))['history']] == [4]
    p = run('train.py', f'--out_dir={out.name}', '--init_from=resume', cwd=workdir)  # space freed: go on
    assert 'resuming from out-full-disk/last.pt at iteration 4' in p.stdout
    assert_same_run(uninterrupted(workdir), out)


def test_a_full_disk_under_ddp_stops_every_rank_and_resumes(workdir, tmp_path):
    """Two gloo processes under torchrun, the disk full at rank 0's second last.pt (only rank 0 writes): rank 0
    says so in its one line, the other rank does not wait for it forever (torchrun stops it when its peer
    exits), the files keep their last complete versions, and the resumed run ends with equal weights on both."""
    out = workdir / 'out-ddp-full-disk'
    launcher = tmp_path / 'launcher.py'
    launcher.write_text(LAUNCHER)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(launcher), 'full',
           'last.pt', '2', *COMMON, f'--out_dir={out.name}', '--max_iters=12']
    p = subprocess.run(cmd, cwd=workdir, env=dict(ENV, GRASSMANN_ROOT=ROOT, PYTHONPATH=ROOT), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode != 0
    assert f"train.py: error: [Errno 27] cannot write last.pt in {out.name}: File too large" in p.stderr, p.stderr
    assert torch.load(out / 'last.pt', weights_only=True)['iter_num'] == 4 and not list(out.glob('*.tmp'))
    p = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                        os.path.join(ROOT, 'train.py'), f'--out_dir={out.name}', '--init_from=resume'],
                       cwd=workdir, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and 'resuming from out-ddp-full-disk/last.pt at iteration 4' in p.stdout, p.stdout + p.stderr
    shas = [line.split()[-1] for line in p.stdout.splitlines() if 'final weights sha1' in line]
    assert len(shas) == 2 and shas[0] == shas[1]
    assert json.load(open(out / 'results.json'))['completed'] is True


def test_a_full_disk_under_results_json_keeps_the_last_complete_one(tmp_path):
    """write_atomic alone: a text file that cannot be written whole is never half there."""
    (tmp_path / 'results.json').write_text('{"complete": true}')
    code = ("import resource, signal, checkpoints\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
            "try:\n"
            "    checkpoints.write_atomic('results.json', lambda f: f.write(b'x' * 5000))\n"
            "except OSError as e:\n"
            "    print(e)\n")
    p = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=dict(ENV, PYTHONPATH=ROOT), capture_output=True, text=True)
    assert "cannot write results.json in .: File too large" in p.stdout and 'the previous results.json is as it was' in p.stdout
    assert os.listdir(tmp_path) == ['results.json'] and (tmp_path / 'results.json').read_text() == '{"complete": true}'


def test_a_full_disk_stops_prepare_in_one_line_and_keeps_the_prepared_folder(prepared, tmp_path):
    """prepare.py over a prepared folder with room for a few KiB per file: one line naming the file and what
    to do, no traceback, no temporary file, and every file of the folder as it was (train.bin is the first
    it rewrites, ~60 KiB)."""
    out = tmp_path / 'wikitext2_bert'
    shutil.copytree(prepared[0], out)
    before = {f: sha(out / f) for f in os.listdir(out)}
    code = ("import resource, runpy, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
            f"sys.argv = [{os.path.join(ROOT, 'prepare.py')!r}] + sys.argv[1:]\n"
            "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    p = subprocess.run([sys.executable, '-c', code, *SLICE_ARGS, '--out', str(out)], cwd=tmp_path,
                       env=dict(ENV, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=600)
    assert p.returncode != 0 and 'Traceback' not in p.stderr, p.stderr
    assert p.stderr.strip().splitlines() == [
        f"prepare.py: error: [Errno 27] cannot write train.bin in {out}: File too large (the disk is full, or a limit on "
        "file size or quota was reached); the previous train.bin is as it was. Free some space, then run prepare.py again"]
    assert {f: sha(out / f) for f in os.listdir(out)} == before


def test_a_full_disk_before_the_first_checkpoint_says_to_run_again(workdir, tmp_path):
    """Nothing to resume from: the advice is the command itself again, not --init_from=resume."""
    out = workdir / 'out-full-disk-first'
    p = faulty_run(workdir, tmp_path, 'full', 'last.pt', 1, *COMMON, f'--out_dir={out.name}', '--max_iters=12')
    assert p.returncode != 0 and 'Traceback' not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert 'No checkpoint was written yet: free some space, then run the same command again' in p.stderr, p.stderr
    assert '--init_from=resume' not in p.stderr and not (out / 'last.pt').exists()


@pytest.mark.parametrize('damage, said', [
    ('missing vocab.txt', 'vocab.txt not found, which data/broken/meta.json names as its vocabulary'),
    ('missing val.bin', 'val.bin not found'),
    ('train.bin cut short', 'train.bin holds 1,000 bytes (500 tokens), but data/broken/meta.json says'),
    ('train.bin cut mid-token', 'train.bin holds 1,001 bytes, not whole 2-byte token ids'),
    ('val.bin of another preparation', 'val.bin holds'),  # longer than meta.json says: the train split's ids
    ('meta.json cut short', 'meta.json is not valid JSON')])
def test_a_broken_data_folder_is_named_before_anything_trains(workdir, damage, said):
    """A token file missing, cut short (a copy stopped by a full disk) or left by another preparation, or a
    broken meta.json: one line naming the file and what to do, and nothing written. Unchecked, a cut
    train.bin trained on what was left, and the reported bits per byte divided by the bytes of the whole."""
    data = workdir / 'data' / 'broken'
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(workdir / 'data' / 'slice', data)
    if damage == 'missing val.bin':
        (data / 'val.bin').unlink()
    elif damage == 'missing vocab.txt':
        (data / 'vocab.txt').unlink()
    elif damage.startswith('train.bin cut'):
        (data / 'train.bin').write_bytes((data / 'train.bin').read_bytes()[:1000 + damage.endswith('mid-token')])
    elif damage == 'val.bin of another preparation':
        shutil.copy(data / 'train.bin', data / 'val.bin')
    else:
        (data / 'meta.json').write_text((data / 'meta.json').read_text()[:100])
    out = workdir / 'out-broken-data'
    p = run('train.py', *TINY, '--dataset=broken', f'--out_dir={out.name}', '--max_iters=2', cwd=workdir, check=False)
    assert p.returncode != 0 and 'Traceback' not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert said in p.stderr and 'python prepare.py --out data/broken' in p.stderr, p.stderr
    assert not out.exists()


def test_a_run_resumed_on_other_tokens_is_refused(workdir):
    """Between a run's stop and its resume the data folder changed (prepared again with other options, or
    --dataset names another): the run would go on with a history of two data sets. Refused in one line,
    nothing written; eval_only, which only reads, may evaluate the checkpoint on other data."""
    out = workdir / 'out-other-tokens'
    run('train.py', *TINY, f'--out_dir={out.name}', '--max_iters=4', '--eval_interval=2', cwd=workdir)
    changed = workdir / 'data' / 'changed'
    shutil.rmtree(changed, ignore_errors=True)
    shutil.copytree(workdir / 'data' / 'slice', changed)
    ids = np.fromfile(changed / 'train.bin', dtype=np.uint16)
    ids[10] = (ids[10] + 1) % 30522  # one token of another preparation: same length, meta.json as it was
    ids.tofile(changed / 'train.bin')
    before = files(out)
    p = run('train.py', f'--out_dir={out.name}', '--init_from=resume', '--dataset=changed', '--max_iters=8', cwd=workdir, check=False)
    assert p.returncode != 0 and 'Traceback' not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert 'cannot resume: the tokens of train.bin in data/changed are not those this run trained on' in p.stderr, p.stderr
    assert files(out) == before
    assert 'val loss' in run('train.py', f'--out_dir={out.name}', '--eval_only=True', '--dataset=changed', cwd=workdir).stdout
    run('train.py', f'--out_dir={out.name}', '--init_from=resume', '--max_iters=8', cwd=workdir)  # its own data: goes on
    assert json.load(open(out / 'results.json'))['iter'] == 8


@pytest.mark.parametrize('name, nth, args', [('last.pt', 2, []), ('ckpt.pt', 3, []), ('results.json', 3, WORSE_AT_THE_END)])
def test_a_run_killed_while_writing_resumes_bit_exactly(workdir, tmp_path, name, nth, args):
    """SIGKILL in the middle of writing last.pt (the one before stays whole); of writing ckpt.pt at the last
    evaluation, after last.pt (the best weights then come from last.pt, not from the older ckpt.pt); of
    writing results.json when the best weights are not the last (last.pt carries them too)."""
    out = workdir / f'out-killed-{name}'
    p = faulty_run(workdir, tmp_path, 'kill', name, nth, *COMMON, *args, f'--out_dir={out.name}', '--max_iters=12')
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert (out / f'{name}.tmp').exists()  # cut in the middle: the temporary file is there, half written
    last = torch.load(out / 'last.pt', weights_only=True)
    assert last['iter_num'] == (4 if name == 'last.pt' else 12)
    assert (last['best']['iter'] != last['iter_num']) == (args == WORSE_AT_THE_END)  # the case each one is for
    run('train.py', f'--out_dir={out.name}', '--init_from=resume', cwd=workdir)
    assert_same_run(uninterrupted(workdir, *args), out)


def test_one_run_per_folder_a_second_is_refused_until_the_first_is_killed(workdir):
    out = workdir / 'out-locked'
    cmd = [sys.executable, os.path.join(ROOT, 'train.py'), *TINY, f'--out_dir={out.name}', '--max_iters=100000',
           '--eval_interval=2']
    first = subprocess.Popen(cmd, cwd=workdir, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while time.time() - t0 < 120 and not (out / 'ckpt.pt').exists():
            time.sleep(0.2)
        first.send_signal(signal.SIGSTOP)  # frozen: whatever changes in the folder now, the second run changed
        time.sleep(0.5)
        before = files(out)
        for args in ([], ['--init_from=resume']):
            p = run('train.py', *TINY, f'--out_dir={out.name}', '--max_iters=4', *args, cwd=workdir, check=False)
            assert p.returncode != 0 and 'Traceback' not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
            assert f"{out.name} is in use by another run (pid {first.pid})" in p.stderr, p.stderr
            assert files(out) == before
        # reading takes no lock: evaluating and sampling the held folder work
        p = run('train.py', f'--out_dir={out.name}', '--eval_only=True', cwd=workdir)
        assert 'val loss' in p.stdout
        run('sample.py', f'--out_dir={out.name}', '--max_new_tokens=2', '--num_samples=1', cwd=workdir)
        assert files(out) == before
    finally:
        first.kill()  # SIGKILL: no chance to unlock; the OS releases the lock with the process
        first.wait()
    p = run('train.py', *TINY, f'--out_dir={out.name}', '--max_iters=4', '--eval_interval=2', cwd=workdir)
    assert json.load(open(out / 'results.json'))['completed'] is True


def test_offline_with_wandb_log_the_run_goes_on_logging_offline(workdir, tmp_path):
    """wandb_log=True with an account but no network (every connection refused): wandb.init fails after
    its timeout; the run says so in one line and trains, its wandb log written offline for `wandb sync`."""
    out = workdir / 'out-wandb-no-network'
    env = {k: v for k, v in ENV.items() if k != 'WANDB_MODE'}
    env.update(HOME=str(tmp_path), WANDB_API_KEY='0' * 40, WANDB_INIT_TIMEOUT='10', HTTPS_PROXY='http://127.0.0.1:9',
               HTTP_PROXY='http://127.0.0.1:9', https_proxy='http://127.0.0.1:9', http_proxy='http://127.0.0.1:9')
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), *TINY, f'--out_dir={out.name}', '--max_iters=2',
                        '--eval_interval=2', '--wandb_log=True'], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    said = [line for line in p.stderr.splitlines() if line.startswith('wandb: cannot start the online run')]
    assert len(said) == 1 and f'logging offline to {out.name}/wandb instead' in said[0], p.stderr
    assert json.load(open(out / 'results.json'))['completed'] is True
    runs = [d for d in os.listdir(out / 'wandb') if d.startswith('offline-run-')]
    assert len(runs) == 1 and any(f.endswith('.wandb') for f in os.listdir(out / 'wandb' / runs[0]))


def test_offline_without_the_tiktoken_cache_sampling_and_preparing_say_so_in_one_line(workdir, tmp_path):
    """A GPT-2-vocabulary model, no tiktoken cache, every connection refused (a proxy on a closed port)."""
    out = workdir / 'out-gpt2-vocab'
    run('train.py', *TINY, f'--out_dir={out.name}', '--max_iters=2', '--eval_interval=2', cwd=workdir)
    ckpt = torch.load(out / 'ckpt.pt', weights_only=True)
    torch.save(dict(ckpt, tokenizer='gpt2', tokenizer_vocab=None, tokenizer_unk=None), out / 'ckpt.pt')
    (tmp_path / 'cache').mkdir()
    offline = dict(ENV, TIKTOKEN_CACHE_DIR=str(tmp_path / 'cache'), HTTPS_PROXY='http://127.0.0.1:9',
                   HTTP_PROXY='http://127.0.0.1:9', https_proxy='http://127.0.0.1:9', http_proxy='http://127.0.0.1:9')
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'sample.py'), f'--out_dir={out.name}', '--max_new_tokens=2'],
                       cwd=workdir, env=offline, capture_output=True, text=True, timeout=300)
    q = subprocess.run([sys.executable, os.path.join(ROOT, 'prepare.py'), '--src', os.path.join(ROOT, 'testdata', 'wikitext-2'),
                        '--variant', 'tokens', '--sha256', os.path.join(ROOT, 'testdata', 'wikitext-2', 'SHA256SUMS'),
                        '--out', str(tmp_path / 'gpt2')], cwd=tmp_path, env=offline, capture_output=True, text=True, timeout=300)
    for r in (p, q):
        assert r.returncode != 0 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "cannot load tiktoken's GPT-2 BPE" in r.stderr and 'TIKTOKEN_CACHE_DIR' in r.stderr, r.stderr
    assert not (tmp_path / 'gpt2').exists()
