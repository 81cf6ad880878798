"""
The GPU sprint: one command that turns a short loan of one GPU into the 30-epoch comparison. It
installs nothing and reads data prepared on a CPU (carry data/wikitext2_bert to the machine).

Usage (from the repository root):
    python sprint.py --out=$OUT                         # on the GPU: everything below, inside a 10-minute call
    python sprint.py --out=$OUT --deadline_s=285 --runs=paper_attention_l6:44,paper_grassmann_l6:44
    python sprint.py --out=$OUT --compile_mode=default --bench_lens=128,4096 --bench_s=90   # no CUDA graphs; bench
    python sprint.py --out=$OUT --eager --deadline_s=400    # no torch.compile: the fallback if compiling fails
    python sprint.py --device=cpu --rehearsal --out=/tmp/sprint   # the same steps, tiny, about a minute

The rehearsal boxes only the runs in time (their deadline cuts them short: the iterations asked for
cannot fit); its preflight and bench run to their end, so that a busy machine changes how long a
rehearsal takes, not what it checks.

Everything works to one deadline (deadline_s from the start):
1. runs, in RUNS' order of priority, `parallel` processes at once on the one device; each gets the
   deadline less what the end needs (train.py --deadline), so a run cut short still evaluates, tests
   its best weights and writes results.json marked incomplete. torch.compile's mode is compile_mode:
   CUDA graphs by default (the step is launch-bound: 9-11 ms per iteration with four runs at once on
   an H200, against 15-19 ms with three in the default mode); a run that fails under it starts
   again in the default mode.
2. preflight, beside the first runs (it took 110 s of a 500 s window when it ran before them):
   both paper models compiled on the device, a few hundred training steps each (their tokens/s,
   shared with the runs), compiled against eager loss on one batch, the epoch order's hash against
   the CPU's, one full evaluation. A failure here kills the runs; under a mode other than the
   default, everything starts again in the default mode, else the sprint stops.
3. bench.py --compile at the lengths asked for (none by default), each in its own time box.
4. compare.py over every run that wrote results.json; incomplete runs are marked in the summary.
5. pack: OUT/sprint.tar.gz (results, logs, table, figures, bench from the --work folder; no
   checkpoints), OUT/summary.md and OUT/sprint.log: three files, as the device tool brings back.
"""
import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.abspath(__file__))  # scripts and configs; data/ is read from the working folder
# -----------------------------------------------------------------------------
# the paper's 6-layer pair: what the preflight compiles and checks on the device
PREFLIGHT = ('paper_attention_l6', 'paper_grassmann_l6')
# (config, seed) in priority order, seeds 42-44 of each; a config may be several files joined by '+', read
# in that order (a model, then a change to its recipe). First, stage 7's four arms in honest units (one token
# per <unk>), each arm's file alone: the paper's 30 epochs, evaluated once per epoch, no early stopping, so
# that a GPU run checks the CPU's early-stopped numbers (results/stage7/)
STAGE7 = ('study/attention_post', 'study/grassmann_pre_all_learned_sub4_unnormalised',
          'study/grassmann_pre_all_learned_sub4_unnormalised+stage6/attn3', 'study/grassmann_pre_all_learned_sub4')
# Done (results/gpu/, <unk> spelled out as four WordPieces): the paper's pair, the seed reproduction's
# Grassmann model (study/grassmann_post_all) and study/grassmann_pre_all_learned. Next, in honest units:
# those four models again, then the seed reproduction's own recipe for both models (fp16 with a grad
# scaler, as it ran; config/seed/)
PRIORITY = ('paper_attention_l6', 'paper_grassmann_l6', 'study/grassmann_post_all', 'study/grassmann_pre_all_learned',
            'seed/attention', 'seed/grassmann')
# Then stage 4's regularisation grid: post-norm attention and the best Grassmann arm so far at dropout 0.1,
# 0.2 and 0.3, seed 42; once those six are committed under TUNED_DIR (the new units' GPU runs), seeds 43 and
# 44 of each model at its own best dropout (tuned_runs() reads them; seeds 43, 44 wait till then)
TUNED, DROPOUTS = ('study/attention_post', 'study/grassmann_pre_all_learned_sub4'), ('0.1', '0.2', '0.3')
TUNED_DIR = os.path.join(ROOT, 'results', 'gpu', 'unk-one-token', 'runs')
RUNS = ([(c, s) for s in (42, 43, 44) for c in STAGE7] + [(c, s) for s in (42, 43, 44) for c in PRIORITY]
        + [(f'{c}+tuned/dropout{p}', 42) for p in DROPOUTS for c in TUNED])
# Then each model at its own learning rate: each of LR_MODELS (stage 6's arm name: its config) at the peak
# learning rate whose one-epoch float32 CPU run of stage 6 (e) (seed 42, in LR_RUNS) had the best validation
# perplexity, 30 epochs, seeds 42-44 (lr_tuned_runs() reads them; nothing until every LRS of a model has a
# run there, a diverged one counting as the worst)
LR_MODELS = {'attention_post': 'study/attention_post',
             'grassmann_pre_all_learned_sub4_unnormalised': 'study/grassmann_pre_all_learned_sub4_unnormalised',
             'grassmann_pre_all_learned_sub4_unnormalised_attn3': 'study/grassmann_pre_all_learned_sub4_unnormalised+stage6/attn3'}
LRS = ('5e-4', '1e-3', '2e-3', '3e-3')
LR_RUNS = os.path.join(ROOT, 'results', 'stage6', 'runs')
# sha256 of epoch 0's block order (seed 42) as a CPU computes it, by number of training blocks
ORDER_SHA256 = {18547: '02dc8e13a7e6a48263b6a649673992b2fafd33e5bfc4ccd1916efe018d45ca4d',  # wikitext2_bert, block 128, <unk> spelled out
                17277: 'e8a28e5238f5d5eba263eab04770597da87700947ecad5d36d60e20e598eff56'}  # the same, one token per <unk>
# the rehearsal: a tiny model on whatever small data set is given, same steps
TINY = ['--n_layer=1', '--n_embd=32', '--n_head=2', '--reduced_dim=8', '--block_size=32', '--batch_size=4']
# -----------------------------------------------------------------------------


LOG = []  # the open sprint.log


def run_name(config, seed):
    """A run's folder: 'study/attention_post+tuned/dropout0.2', 42 -> 'study_attention_post_tuned_dropout0.2-seed42'."""
    return f"{config.replace('/', '_').replace('+', '_')}-seed{seed}"


def tuned_runs(runs_dir=TUNED_DIR):
    """Seeds 43 and 44 of each TUNED model at the dropout whose seed-42 run (complete, in runs_dir) had the
    best validation perplexity; none for a model until all of its DROPOUTS have such a run."""
    runs = []
    for c in TUNED:
        best = {}
        for p in DROPOUTS:
            path = os.path.join(runs_dir, run_name(f'{c}+tuned/dropout{p}', 42), 'results.json')
            results = json.load(open(path)) if os.path.exists(path) else {}
            if results.get('completed'):
                best[p] = results['best']['val_ppl']
        if len(best) == len(DROPOUTS):
            p = min(best, key=best.get)
            runs += [(f'{c}+tuned/dropout{p}', s) for s in (43, 44)]
    return runs


def lr_tuned_runs(runs_dir=LR_RUNS):
    """Seeds 42-44 of each LR_MODELS model at its best learning rate of stage 6 (e) (make stage6's run names:
    ARM-seed42 at 1e-3, ARM_lrLR-seed42 otherwise; a folder with a 'diverged' file counts as infinite)."""
    runs = []
    for name, c in LR_MODELS.items():
        best = {}
        for lr in LRS:
            folder = os.path.join(runs_dir, f"{name}{'' if lr == '1e-3' else '_lr' + lr}-seed42")
            results = json.load(open(os.path.join(folder, 'results.json'))) if os.path.exists(os.path.join(folder, 'results.json')) else {}
            if results.get('completed'):
                best[lr] = results['best']['val_ppl']
            elif os.path.exists(os.path.join(folder, 'diverged')):
                best[lr] = float('inf')
        if len(best) == len(LRS):
            lr = min(best, key=best.get)
            runs += [(c if lr == '1e-3' else f'{c}+stage6/lr{lr}', s) for s in (42, 43, 44)]
    return runs


def config_files(config):
    """The config files of a run's config name: 'seed/attention' or 'paper_attention_l6+recipes/warmup'."""
    return [os.path.join(ROOT, 'config', f'{part}.py') for part in config.split('+')]


def log(msg):
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    for f in LOG:
        f.write(line + '\n')
        f.flush()


def preflight(args, deadline):
    """Both models on the device: compiled vs eager, the epoch order, speed, one evaluation. Raises on failure."""
    import torch
    from configurator import configure, script_defaults
    from data import epoch_order, evaluate, gather_blocks, load_meta, load_split, num_blocks
    from hardware import pick
    from model import GPT, GPTConfig
    from contextlib import nullcontext
    report = {}
    for name in PREFLIGHT:
        if report and time.time() > deadline and not args.rehearsal:  # the runs beside it are what matters now
            log(f"preflight: out of time; {name} not checked")
            break
        cfg = configure(script_defaults(os.path.join(ROOT, 'train.py')),
                        [os.path.join(ROOT, 'config', f'{name}.py'), f'--dataset={args.dataset}'] + (TINY if args.rehearsal else []))
        data_dir = os.path.join('data', cfg['dataset'])
        meta = load_meta(data_dir)
        train, val = load_split(data_dir, 'train', meta), load_split(data_dir, 'val', meta)
        bs, B = cfg['block_size'], cfg['batch_size']
        n = num_blocks(train, bs)
        order = epoch_order(n, 0, cfg['seed'])
        sha = hashlib.sha256(order.astype(np.int64).tobytes()).hexdigest()
        if n in ORDER_SHA256 and sha != ORDER_SHA256[n]:
            raise RuntimeError(f"epoch order differs from the CPU's: {sha} != {ORDER_SHA256[n]}")
        order_check = 'equal to the CPU' if n in ORDER_SHA256 else f'not checked (no CPU hash for {n} blocks)'
        torch.manual_seed(0)
        dtype = pick(args.device)[1]  # what train.py picks there
        ctx = nullcontext() if dtype == 'float32' else torch.autocast(args.device.split(':')[0], dtype=getattr(torch, dtype))
        model = GPT(GPTConfig(**{k: cfg[k] for k in GPTConfig.__dataclass_fields__ if k != 'vocab_size'},
                              vocab_size=cfg['vocab_size'] or 50304)).to(args.device)
        tokens = torch.from_numpy(train.astype(np.int64)).to(args.device)
        ids = torch.from_numpy(order).to(args.device)
        x, y = gather_blocks(tokens, ids[:B], bs)
        compiled = model if args.eager else torch.compile(model, mode=args.compile_mode)
        model.eval()
        with torch.no_grad(), ctx:
            eager_loss, compiled_loss = model(x, y)[1].item(), compiled(x, y)[1].item()
        if abs(eager_loss - compiled_loss) > 2e-2 * abs(eager_loss):
            raise RuntimeError(f"{name}: compiled loss {compiled_loss:.4f} != eager {eager_loss:.4f}")
        model.train()
        opt = model.configure_optimizers(cfg['weight_decay'], cfg['learning_rate'], (cfg['beta1'], cfg['beta2']), args.device.split(':')[0])
        losses, t0, timed_from = [], time.time(), None
        for step in range(args.preflight_steps):
            x, y = gather_blocks(tokens, ids[(step * B) % (n - B):][:B], bs)
            with ctx:
                loss = compiled(x, y)[1]
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if step == min(9, args.preflight_steps - 1):  # the first steps compile: time the rest
                loss.item()
                timed_from = (time.time(), step)
            losses.append(loss.detach().clone())  # a CUDA graph's next replay overwrites its outputs
        losses = torch.stack(losses).tolist()
        tok_s = (args.preflight_steps - 1 - timed_from[1]) * B * bs / (time.time() - timed_from[0])
        if not losses[-1] < losses[0]:
            raise RuntimeError(f"{name}: the loss did not fall in {args.preflight_steps} steps: {losses[0]:.3f} -> {losses[-1]:.3f}")
        t_eval = time.time()
        val_loss = evaluate(compiled, val, bs, B, args.device, ctx)['loss']
        report[name] = dict(eager_loss=eager_loss, compiled_loss=compiled_loss, order_sha256=sha, order=order_check,
                            steps=args.preflight_steps, first_loss=losses[0], last_loss=losses[-1], tokens_per_s=tok_s,
                            eval_s=time.time() - t_eval, val_loss=val_loss, total_s=time.time() - t0, dtype=dtype)
        log(f"preflight {name}: compiled {compiled_loss:.4f} vs eager {eager_loss:.4f}; order {order_check}; loss "
            f"{losses[0]:.3f} -> {losses[-1]:.3f} in {args.preflight_steps} steps, {tok_s:,.0f} tok/s; "
            f"val loss {val_loss:.4f} in {report[name]['eval_s']:.1f} s")
    return report


def run_all(args, runs, deadline, check=None):
    """Start runs by priority, `parallel` at a time, while a useful amount of time is left. Each stops
    itself at the deadline; one still running grace_s after it is killed. `check` (the preflight) runs
    once, beside the first runs: if it raises, every run is killed and the exception passes on. A run
    that fails under a compile mode other than the default starts again, first, in the default mode."""
    pending, active, started = [(c, s, args.compile_mode) for c, s in runs], [], []
    while pending or active:
        codes = [p.poll() for p, _, _ in active]
        for (p, name, entry), code in zip(active, codes):
            if code not in (None, 0) and entry[2] != 'default':
                log(f"{name} failed under compile mode {entry[2]} (exit code {code}): again in the default mode")
                pending.insert(0, (*entry[:2], 'default'))
        active = [a for a, code in zip(active, codes) if code is None]
        while pending and len(active) < args.parallel and deadline - time.time() > args.min_run_s:
            config, seed, mode = pending.pop(0)
            name = run_name(config, seed)
            out_dir = os.path.join(args.work, 'runs', name)
            os.makedirs(out_dir, exist_ok=True)
            cmd = [sys.executable, os.path.join(ROOT, 'train.py'), *config_files(config),
                   f'--seed={seed}', f'--out_dir={out_dir}',
                   f'--dataset={args.dataset}', f'--device={args.device}', f'--deadline={deadline}',
                   '--checkpoint_every=0', f'--log_interval={args.log_interval}', f'--compile={not args.eager}',
                   f'--compile_mode={mode}',
                   *(TINY + [f'--max_iters={args.rehearsal_iters}', '--eval_interval=20', '--dtype=auto'] if args.rehearsal else [])]
            logf = open(os.path.join(out_dir, 'train.log'), 'a' if name in started else 'w')  # a retry keeps why it failed
            active.append((subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT), name, (config, seed, mode)))
            if name not in started:
                started.append(name)
            log(f"started {name}" + ('' if mode == 'default' else f" (compile mode {mode})"))
        if check is not None:
            try:
                check()
            except Exception:
                for p, name, _ in active:
                    p.kill()
                    p.wait()
                    log(f"killed {name}: the preflight failed")
                raise
            check = None
        if time.time() > deadline + args.grace_s:
            for p, name, _ in active:
                p.kill()
                log(f"killed {name}: still running {args.grace_s:.0f} s past the deadline")
            break
        if not pending or deadline - time.time() <= args.min_run_s:
            pending = []
        time.sleep(0.5)
    return started


def bench(args, end):
    """bench.py --compile per length, each boxed in the time left; each length keeps its own JSON."""
    for T in args.bench_lens:
        left = end - time.time()
        if left < 10 and not args.rehearsal:
            log(f"bench at {T}: no time left")
            continue
        cmd = [sys.executable, os.path.join(ROOT, 'bench.py'), f'--device={args.device}', f'--seq_lens={T}', f'--tokens={args.bench_tokens}',
               '--warmup=3', '--repeats=5', f'--json={args.work}/bench/bench_{T}.json', '--plot=', '--one_process',
               *([] if args.eager else ['--compile'])]
        os.makedirs(os.path.join(args.work, 'bench'), exist_ok=True)
        try:
            with open(os.path.join(args.work, 'bench', f'bench_{T}.log'), 'w') as f:
                subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=None if args.rehearsal else left - 5, check=False)
            log(f"bench at {T}: done")
        except subprocess.TimeoutExpired:
            log(f"bench at {T}: out of time")


def summarize(args, started, report, t_start):
    runs = []
    for name in started:
        path = os.path.join(args.work, 'runs', name, 'results.json')
        r = json.load(open(path)) if os.path.exists(path) else None
        runs.append((name, r))
    lines = ['# GPU sprint', '', f"device {args.device}, {'eager' if args.eager else f'torch.compile (mode {args.compile_mode})'}, deadline {args.deadline_s} s, wall {time.time() - t_start:.0f} s", '',
             f'## Preflight (beside the first {args.parallel} runs: its tokens/s share the device)', '',
             '| model | compiled / eager loss | epoch order | steps: loss | tokens/s | one evaluation |',
             '| --- | --- | --- | --- | ---: | ---: |']
    for name, p in report.items():
        lines.append(f"| {name} | {p['compiled_loss']:.4f} / {p['eager_loss']:.4f} | {p['order']} | {p['steps']}: "
                     f"{p['first_loss']:.3f} -> {p['last_loss']:.3f} | {p['tokens_per_s']:,.0f} | {p['eval_s']:.1f} s |")
    lines += ['', '## Runs', '', '| run | status | compiled | iterations | epochs | best val ppl | test ppl | tokens/s |',
              '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |']
    for name, r in runs:
        if r is None:
            lines.append(f"| {name} | no results.json (see its train.log) | | | | | | |")
            continue
        status = 'complete' if r.get('completed') else 'partial'
        compiled = f"mode {r['config'].get('compile_mode', 'default')}" if r['config'].get('compile') else 'no'  # a run may have fallen back
        tok_s = r['history'][-1]['tokens_per_s'] if r['history'] else 0
        lines.append(f"| {name} | {status} | {compiled} | {r['iter']} / {r['max_iters']} | {r['history'][-1]['epoch'] if r['history'] else 0:.2f} | "
                     f"{r['best']['val_ppl'] if r['best'] else float('nan'):.2f} | "
                     f"{r['test']['ppl'] if r['test'] else float('nan'):.2f} | {tok_s:,.0f} |")
    return '\n'.join(lines) + '\n', [name for name, r in runs if r and r.get('test')]


def pack(args, summary):
    """OUT gets three files (the machine returns at most 8 of 16 MiB): summary.md, sprint.log and
    sprint.tar.gz, which holds everything small the sprint wrote (checkpoints stay behind)."""
    with open(os.path.join(args.work, 'summary.md'), 'w') as f:
        f.write(summary)
    path = os.path.join(args.out, 'sprint.tar.gz')
    with tarfile.open(path + '.tmp', 'w:gz') as tar:
        for f in sorted(glob.glob(os.path.join(args.work, '**', '*'), recursive=True)):
            if os.path.isfile(f) and not f.endswith(('.pt', '.tmp')) and os.path.getsize(f) < 8 * 2**20:
                tar.add(f, arcname=os.path.relpath(f, args.work))
    os.replace(path + '.tmp', path)
    for name in ('summary.md', 'sprint.log'):
        shutil.copy(os.path.join(args.work, name), os.path.join(args.out, name))
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=os.environ.get('OUT', 'out/sprint'), help='where the three files to bring back go (default $OUT)')
    ap.add_argument('--work', default='out/sprint-work', help='where the runs, checkpoints, bench and comparison are written')
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--dataset', default='wikitext2_bert')
    ap.add_argument('--deadline_s', type=float, default=560, help='seconds from the start to the end of packing')
    ap.add_argument('--parallel', type=int, default=4, help='training processes at once on the device')
    ap.add_argument('--preflight_steps', type=int, default=200)
    ap.add_argument('--min_run_s', type=float, default=120, help='start no run with less time than this left')
    ap.add_argument('--bench_s', type=float, default=0, help='time kept for bench.py at the end')
    ap.add_argument('--bench_lens', type=lambda s: [int(x) for x in s.split(',') if x], default=[], help="e.g. 128,4096; '': no bench")
    ap.add_argument('--bench_tokens', type=int, default=8192)
    ap.add_argument('--end_s', type=float, default=30, help='time kept for the runs to test, and for compare and pack')
    ap.add_argument('--grace_s', type=float, default=30, help='a run still going this long past its deadline is killed')
    ap.add_argument('--log_interval', type=int, default=200)
    ap.add_argument('--runs', help='comma-separated config:seed pairs instead of RUNS')
    ap.add_argument('--rehearsal', action='store_true', help='tiny models, no compile: the steps, not the numbers')
    ap.add_argument('--rehearsal_iters', type=int, default=100000, help="a rehearsal run's iterations (the default: "
                    "more than any deadline allows, so that the deadline stops it)")
    ap.add_argument('--eager', action='store_true', help='no torch.compile anywhere (the fallback if compiling fails)')
    ap.add_argument('--compile_mode', default='reduce-overhead', help="torch.compile's mode for the preflight and the runs; "
                    "'reduce-overhead' replays CUDA graphs. A failure under it falls back to the default mode")
    args = ap.parse_args()
    args.eager = args.eager or args.rehearsal  # on a CPU compiling would take the rehearsal's whole minute
    t_start = time.time()
    end = t_start + args.deadline_s
    for d in (args.out, args.work):
        os.makedirs(d, exist_ok=True)
    LOG.append(open(os.path.join(args.work, 'sprint.log'), 'w'))
    runs = [(c, int(s)) for c, s in (r.split(':') for r in args.runs.split(','))] if args.runs else RUNS + tuned_runs() + lr_tuned_runs()
    log(f"sprint: {len(runs)} runs by priority, {args.parallel} at a time, deadline in {args.deadline_s:.0f} s, out {args.out}")
    report = {}

    def check():  # beside the first runs: its ~2 minutes of compiling would otherwise be the runs'
        report.update(preflight(args, end - args.bench_s - args.end_s))
    while True:
        try:
            started = run_all(args, runs, end - args.bench_s - args.end_s, check)
            break
        except Exception as e:  # nothing else is worth the device's time if this fails
            if args.compile_mode != 'default':  # it may be the mode: the default mode has run before
                log(f"preflight failed under compile mode {args.compile_mode}: {type(e).__name__}: {e}; "
                    "everything again in the default mode")
                args.compile_mode = 'default'
                shutil.rmtree(os.path.join(args.work, 'runs'), ignore_errors=True)
                continue
            log(f"preflight failed: {type(e).__name__}: {e}")
            pack(args, f"# GPU sprint\n\npreflight failed: {type(e).__name__}: {e}\n")
            sys.exit(1)
    bench(args, end - args.end_s / 2)
    summary, tested = summarize(args, started, report, t_start)
    if tested:
        cmd = [sys.executable, os.path.join(ROOT, 'compare.py'), *[os.path.join(args.work, 'runs', n) for n in tested],
               '--out', os.path.join(args.work, 'compare'), '--published', 'the paper', '248.4', '275.7',
               '--published', 'Hydra reproduction (seed)', '238.71', '321.05', '--paired']
        p = subprocess.run(cmd, capture_output=True, text=True)
        log(f"compare.py: {'done' if p.returncode == 0 else p.stderr.strip()[-300:]}")
        table = os.path.join(args.work, 'compare', 'results.md')
        if os.path.exists(table):
            summary += '\n## Comparison (compare.py; partial runs included as they stand)\n\n' + open(table).read().split('\n', 2)[2]
    log(f"packing into {args.out}; {time.time() - t_start:.0f} s of {args.deadline_s:.0f}")
    pack(args, summary)


if __name__ == '__main__':
    main()
