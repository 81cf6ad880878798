"""
Benchmark both mixers across sequence lengths, with the tokens per step held fixed: the whole training
step (forward, backward, AdamW), the forward pass, and the mixer alone (one layer, forward and
forward+backward). The first call of each (compile and warm-up) is timed on its own and left out;
each number is the median of several timed repeats after it.

Usage:
    python bench.py                                  # CPU: lengths 128 ... 8192, 8192 tokens per step
    python bench.py --quick                          # a short sweep, about a minute on 2 CPU cores
    python bench.py --seq_lens=128,1024 --json=bench.json --plot=bench.png
    python bench.py --device=cuda --compile          # GPU: lengths up to 65,536 (or out of memory)
    python bench.py --profile                        # also writes a torch.profiler trace per train step
    python bench.py --generate                       # decoding: time per token against generated length
    python bench.py --generate --compile             # the same, each model's decoding step compiled
    python bench.py --partners=ema                   # the Grassmann mixer with running summaries (stage 4)
    python bench.py --generate --grassmann=FILES     # decoding a study arm (its state: what a hybrid keeps)
    python bench.py --dtype=float32 --seq_lens=128,1024,4096 \
        --grassmann=config/study/grassmann_pre_all_learned_sub4.py,config/stage6/zconv4.py   # a study arm (stage 6)

Memory: on a GPU, the peak allocated during the call, less what was allocated before it; on a CPU,
which has no allocator statistics, the bytes the call keeps for backward (activations: the part of
memory that grows with sequence length), so none for forward-only rows.

--generate times decoding instead, without position tables (pos_emb=False) so that both models run past
block_size (with --grassmann, the arm's model otherwise): incremental decoding ('decode', after 64
untimed warm-up steps: the median time of the 32 steps before each length, and the size of the
decoding state there) against recomputing the whole context for the next token ('decode_recompute'),
at batch 1 and 32 (--gen_batches), from 32 tokens on (the first 32 steps) by default: short texts are
where a Grassmann step is slowest against attention's.
With --compile the decoding step is compiled (dynamic shapes, 300 warm-up steps), and both models run
in the autocast dtype instead of under autocast; the recompute baseline stays eager.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import statistics
import time
from contextlib import nullcontext

import torch

from configurator import code_version
from flops import estimate_mfu
from hardware import device_name, keep_freed_memory, pick, release_memory
from model import GPT, GPTConfig, CausalSelfAttention, GrassmannMixer

MIXERS = ('attention', 'grassmann')


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def median_ms(fn, device, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def memory_mb(fn, saved_fn, device):
    """On a GPU, the peak allocated during fn(), less what was allocated before it; on a CPU (no
    allocator statistics), the bytes of what saved_fn() keeps for backward, or None if nothing."""
    if device.startswith('cuda'):
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        sync(device)
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    fn = saved_fn
    storages = {}  # every distinct storage autograd keeps for backward, counted once

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values()) / 2**20 if storages else None


def arm_keys(files):
    """The model keys a study arm's config files set, as train.py reads them, less those a benchmark sets
    (block_size, dropout) and the mixer: the attention side takes the shared ones (vocabulary, sizes) too."""
    from dataclasses import fields
    from compare import train_defaults
    from configurator import configure
    cfg, defaults = configure(train_defaults(), files), train_defaults()
    return {f.name: cfg[f.name] for f in fields(GPTConfig) if cfg[f.name] != defaults[f.name]
            and f.name not in ('block_size', 'dropout', 'mixer')}


SHARED_KEYS = ('vocab_size', 'n_layer', 'n_head', 'n_embd', 'bias', 'pos_emb', 'init')


def model_keys(mixer, args):
    """GPTConfig keys of one side: the study arm's (--grassmann) or the partners' for the Grassmann model,
    the keys both share for attention."""
    arm = arm_keys(args.grassmann.split(',')) if args.grassmann else {'partners': args.partners}
    return arm if mixer == 'grassmann' else {k: v for k, v in arm.items() if k in SHARED_KEYS}


def bench_one(mixer, T, B, args, ctx):
    """Rows for one mixer at one sequence length."""
    dev, arm = args.device, model_keys(mixer, args)
    # a position table of at least max(lags) + 1 rows: below that length the longest lags are simply never valid
    cfg = GPTConfig(mixer=mixer, block_size=max(T, max(arm.get('lags', GPTConfig.lags)) + 1), dropout=0.0, **arm)
    model = GPT(cfg).to(dev)
    opt = model.configure_optimizers(0.01, 1e-3, (0.9, 0.999), dev.split(':')[0])
    layer = (GrassmannMixer(cfg, cfg.lags) if mixer == 'grassmann' else CausalSelfAttention(cfg)).to(dev)
    run_model, run_layer = (torch.compile(model), torch.compile(layer)) if args.compile else (model, layer)
    idx = torch.randint(0, cfg.vocab_size, (B, T), device=dev)
    h = torch.randn(B, T, cfg.n_embd, device=dev)

    def train_step():
        with ctx:
            _, loss = run_model(idx, idx)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def forward():
        with torch.no_grad(), ctx:
            run_model(idx, idx)

    def train_forward():  # what the training step keeps for backward, for the CPU memory figure
        with ctx:
            return run_model(idx, idx)[1]

    def mixer_fwd():
        with torch.no_grad(), ctx:
            run_layer(h)

    def mixer_fwdbwd():
        x = h.detach().requires_grad_()
        with ctx:
            y = run_layer(x)
        y.backward(torch.ones_like(y))

    rows = []
    for what, fn, mem_fn in (('train_step', train_step, train_forward), ('forward', forward, forward),
                             ('mixer_fwd', mixer_fwd, mixer_fwd), ('mixer_fwdbwd', mixer_fwdbwd, mixer_fwdbwd)):
        try:
            sync(dev)
            t0 = time.perf_counter()
            fn()  # the first call compiles, when compiling
            sync(dev)
            first_s = time.perf_counter() - t0
            ms = median_ms(fn, dev, args.warmup, args.repeats)
            mem = memory_mb(fn, mem_fn, dev)  # on a GPU the whole call, backward and optimizer included
        except torch.OutOfMemoryError:
            print(f"{mixer} {what} at T={T}: out of memory")
            torch.cuda.empty_cache()
            continue
        tok_s = B * T / ms * 1000
        mfu = estimate_mfu(model.config, T, tok_s, dev, args.dtype) if what == 'train_step' else None
        rows.append(dict(mixer=mixer, partners=cfg.partners, arm=args.grassmann if mixer == 'grassmann' else None,
                         params=model.num_params(), seq_len=T, batch_size=B, what=what, ms=ms, tokens_per_s=tok_s,
                         peak_mem_mb=mem, mfu=mfu, compile_s=first_s if args.compile else None))
        if args.profile and what == 'train_step':
            with torch.profiler.profile() as prof:
                fn()
            prof.export_chrome_trace(f"bench_trace_{mixer}_{T}.json")
    return rows


def state_mb(cache):
    """Bytes held by a decoding cache: the attention KV buffers (their used part), the Grassmann rings of
    reduced vectors, the partners' summaries and the convolution's last inputs (not the cached weights)."""
    total = 0
    for layer in cache['layers']:
        for key, value in layer.items():
            if key == 'kv':
                value = value[:, :, :, :layer['n']]
            if torch.is_tensor(value):
                total += value.numel() * value.element_size()
    return total / 2**20


@torch.no_grad()
def bench_generate(args, ctx):
    """Both models decode side by side, taking turns every `turn` steps, so that the machine's drift
    (other tenants, clock speed) falls on both alike: timed one after the other, their ratio at batch 1
    moved by 20% between runs. Not every step: then each would find the other's weights and cache in
    the CPU's caches, which slowed the Grassmann model's steps by a quarter at 8,192 tokens; the median
    over the `turn` steps before a length leaves out the first steps after a turn."""
    dev, rows, turn, last = args.device, [], 32, max(args.gen_lens)
    models = {m: GPT(GPTConfig(**{**model_keys(m, args), 'mixer': m, 'pos_emb': False, 'dropout': 0.0})).to(dev).eval()
              for m in MIXERS}
    run, warmup = models, 64
    if args.compile:
        # a compiled graph under autocast casts every weight at every step (eager autocast caches the
        # casts): ~2 ms per step here, more than the step. So the models run in the autocast dtype.
        if args.dtype != 'float32':
            models = {m: model.to(getattr(torch, args.dtype)) for m, model in models.items()}
            ctx = nullcontext()
        # both models share GPT.forward, whose graphs dynamo counts together: one per state of
        # attention's cache (its buffer grows at 64 and 130 positions), two for the Grassmann rings
        torch._dynamo.config.recompile_limit = 64
        run, warmup = {m: torch.compile(model, dynamic=True) for m, model in models.items()}, 300
    for B in args.gen_batches:
        caches, times, states = {m: models[m].new_cache() for m in MIXERS}, {m: [] for m in MIXERS}, {m: {} for m in MIXERS}
        toks = {m: torch.randint(0, models[m].config.vocab_size, (B, 1), device=dev) for m in MIXERS}
        with ctx:  # one autocast region: the weights are cast to bf16 once, not at every step
            for m in MIXERS:  # untimed warm-up on caches of their own (compiling, when compiling)
                warm = models[m].new_cache()
                for _ in range(warmup):
                    run[m](toks[m], cache=warm)
            for first in range(1, last + 1, turn):
                for m in MIXERS:
                    for step in range(first, min(first + turn, last + 1)):
                        sync(dev)
                        t0 = time.perf_counter()
                        logits, _ = run[m](toks[m], cache=caches[m])
                        toks[m] = logits[:, -1].argmax(-1, keepdim=True)  # greedy: sampling is not what is timed
                        sync(dev)
                        times[m].append((time.perf_counter() - t0) * 1000)
                        if step in args.gen_lens:
                            states[m][step] = state_mb(caches[m])
        for m in MIXERS:
            arm = args.grassmann if m == 'grassmann' else None
            for n in args.gen_lens:
                ms = statistics.median(times[m][max(0, n - turn):n])
                rows.append(dict(mixer=m, arm=arm, what='decode', gen_len=n, seq_len=n, batch_size=B, ms=ms, ms_per_token=ms,
                                 tokens_per_s=B / ms * 1000, peak_mem_mb=states[m][n]))
                if n <= args.recompute_max:  # the next token by running the whole context again
                    idx = torch.randint(0, models[m].config.vocab_size, (B, n), device=dev)

                    def recompute():
                        with ctx:
                            models[m](idx)
                    ms = median_ms(recompute, dev, 1, args.repeats)
                    rows.append(dict(mixer=m, arm=arm, what='decode_recompute', gen_len=n, seq_len=n, batch_size=B, ms=ms,
                                     ms_per_token=ms, tokens_per_s=B / ms * 1000, peak_mem_mb=None))
        del caches
        release_memory(dev)
        print(f"  done: decoding, batch {B}", flush=True)
    return rows


def print_generate_table(rows):
    print("\ndecoding: ms per step (each step makes batch tokens), tokens/s, state MB; 'recompute' runs the whole context")
    print(f"{'B':>3} {'len':>6} | {'attention':>28} {'recompute':>10} | {'grassmann':>28} {'recompute':>10}")
    for B in sorted({r['batch_size'] for r in rows}):
        for n in sorted({r['gen_len'] for r in rows}):
            cells = []
            for m in MIXERS:
                d = next(r for r in rows if (r['mixer'], r['what'], r['batch_size'], r['gen_len']) == (m, 'decode', B, n))
                rc = next((r for r in rows if (r['mixer'], r['what'], r['batch_size'], r['gen_len']) == (m, 'decode_recompute', B, n)), None)
                cells.append(f"{d['ms']:8.2f} ({d['tokens_per_s']:>8,.0f}) {d['peak_mem_mb']:8.2f} "
                             + (f"{rc['ms']:10.2f}" if rc else f"{'-':>10}"))
            print(f"{B:>3} {n:>6} | {cells[0]} | {cells[1]}")


def check_generate_targets(rows):
    out = []
    for B in sorted({r['batch_size'] for r in rows}):
        g = sorted((r for r in rows if r['mixer'] == 'grassmann' and r['what'] == 'decode' and r['batch_size'] == B),
                   key=lambda r: r['gen_len'])
        t = [r['ms'] for r in g]
        out.append((f"grassmann decode time per token at batch {B}, {g[0]['gen_len']}..{g[-1]['gen_len']}: "
                    f"max/min {max(t) / min(t):.2f} <= 1.2", max(t) / min(t) <= 1.2))
        mem = {r['peak_mem_mb'] for r in g}
        out.append((f"grassmann decoding state at batch {B}: {sorted(mem)} MB, independent of length", len(mem) == 1))
        a = {r['gen_len']: r['ms'] for r in rows if (r['mixer'], r['what'], r['batch_size']) == ('attention', 'decode', B)}
        worst = max((r['ms'] / a[r['gen_len']], r['gen_len']) for r in g if r['gen_len'] in a)
        out.append((f"grassmann/attention decode time per token at batch {B}, every length: at most {worst[0]:.2f} "
                    f"(at {worst[1]}) <= 1.00", worst[0] <= 1.0))
        for m in MIXERS:
            d = next((r for r in rows if (r['mixer'], r['what'], r['batch_size'], r['gen_len']) == (m, 'decode', B, 512)), None)
            rc = next((r for r in rows if (r['mixer'], r['what'], r['batch_size'], r['gen_len']) == (m, 'decode_recompute', B, 512)), None)
            if d and rc:
                out.append((f"{m} at 512 tokens, batch {B}: incremental {rc['ms'] / d['ms']:.1f}x faster than recompute >= 5",
                            rc['ms'] / d['ms'] >= 5))
    return out


def child_argv(args, T, json_path):
    """The arguments that measure length T alone, rebuilt from the parsed ones (whatever form they came in)."""
    argv = [f'--device={args.device}', f'--dtype={args.dtype}', f'--seq_lens={T}', f'--tokens={args.tokens}',
            f'--warmup={args.warmup}', f'--repeats={args.repeats}', f'--json={json_path}', '--plot=', '--one_process',
            f'--partners={args.partners}'] + ([f'--grassmann={args.grassmann}'] if args.grassmann else [])
    return argv + [f'--{flag}' for flag in ('compile', 'profile') if getattr(args, flag)]


def bench_in_child(args, T):
    """The rows of one length, measured in a fresh process: what one length leaves in the allocator
    (on a CPU, keep_freed_memory keeps it all) must neither slow nor crowd out the next."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'rows.json')
        subprocess.run([sys.executable, os.path.abspath(__file__), *child_argv(args, T, path)], check=True)
        with open(path) as f:
            return [{k: v for k, v in r.items() if k not in ('device', 'torch', 'dtype')} for r in json.load(f)]


def print_table(rows):
    for what in ('train_step', 'forward', 'mixer_fwd', 'mixer_fwdbwd'):
        print(f"\n{what}: ms per call (tokens/s), memory MB; G/A = Grassmann time / attention time")
        print(f"{'T':>6} {'B':>4} | {'attention':>22} {'mem':>8} | {'grassmann':>22} {'mem':>8} | {'G/A':>5}")
        for T in sorted({r['seq_len'] for r in rows}):
            pair = {r['mixer']: r for r in rows if r['what'] == what and r['seq_len'] == T}
            cells = []
            for m in MIXERS:
                r = pair.get(m)
                mem = f"{r['peak_mem_mb']:.1f}" if r and r['peak_mem_mb'] is not None else '-'
                cells.append(f"{r['ms']:9.2f} ({r['tokens_per_s']:>10,.0f}) {mem:>8}" if r else f"{'n/a':>22} {'-':>8}")
            ratio = f"{pair['grassmann']['ms'] / pair['attention']['ms']:.2f}" if len(pair) == 2 else '-'
            B = next(iter(pair.values()))['batch_size'] if pair else 0
            print(f"{T:>6} {B:>4} | {cells[0]} | {cells[1]} | {ratio:>5}")


def check_targets(rows):
    """The issue's targets, each as (description, met or None where not measured)."""
    def get(m, what, T):
        return next((r for r in rows if r['mixer'] == m and r['what'] == what and r['seq_len'] == T), None)

    def ratio(what, T):
        g, a = get('grassmann', what, T), get('attention', what, T)
        return g['ms'] / a['ms'] if g and a else None
    lens = sorted({r['seq_len'] for r in rows})
    out = []
    for T in lens:  # the lean mixer: no slower and no larger than attention at any length
        r = ratio('mixer_fwdbwd', T)
        out.append((f"mixer_fwdbwd at {T}: Grassmann/attention time {r:.2f} <= 1.00" if r else
                    f"mixer_fwdbwd at {T}: not measured", r <= 1.0 if r else None))
        g, a = get('grassmann', 'mixer_fwdbwd', T), get('attention', 'mixer_fwdbwd', T)
        if g and a and g['peak_mem_mb'] and a['peak_mem_mb']:
            m = g['peak_mem_mb'] / a['peak_mem_mb']
            out.append((f"mixer_fwdbwd at {T}: Grassmann/attention memory {m:.2f} <= 1.00", m <= 1.0))
    for what, T, bound in (('mixer_fwdbwd', 4096, 1 / 3), ('mixer_fwdbwd', 8192, 1 / 5), ('train_step', 128, 1.1)):
        r = ratio(what, T)
        if T in lens:
            out.append((f"{what} at {T}: Grassmann/attention time {r:.2f} <= {bound:.2f}" if r else
                        f"{what} at {T}: not measured", r <= bound if r else None))
    for what in ('mixer_fwdbwd', 'train_step'):
        g = [get('grassmann', what, T) for T in lens]
        g = [r for r in g if r]
        if len(g) >= 2:
            t = [r['ms'] / (r['batch_size'] * r['seq_len']) for r in g]
            out.append((f"grassmann {what} time per token, {g[0]['seq_len']}..{g[-1]['seq_len']}: max/min {max(t) / min(t):.2f} <= 1.3",
                        max(t) / min(t) <= 1.3))
            m = [r['peak_mem_mb'] / (r['batch_size'] * r['seq_len']) for r in g if r['peak_mem_mb']]
            if len(m) >= 2:
                out.append((f"grassmann {what} memory per token: max/min {max(m) / min(m):.2f} <= 1.3", max(m) / min(m) <= 1.3))
    return out


def pyplot(path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print(f"matplotlib is not installed: {path} skipped (pip install matplotlib)")


def finish(fig, axes, xlabel, ylabels, path):
    for ax, label in zip(axes, ylabels):
        ax.set_xscale('log', base=2)
        ax.set_yscale('log')
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def plot_generate(rows, path):
    plt = pyplot(path)
    if not plt:
        return
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (m, color) in zip(MIXERS, ('tab:blue', 'tab:orange')):
        for B, marker in zip(sorted({r['batch_size'] for r in rows}), 'os^'):
            for what, style in (('decode', '-'), ('decode_recompute', ':')):
                rs = sorted((r for r in rows if (r['mixer'], r['what'], r['batch_size']) == (m, what, B)), key=lambda r: r['gen_len'])
                if rs:
                    ax_t.plot([r['gen_len'] for r in rs], [r['ms'] for r in rs], style, color=color, marker=marker,
                              label=f"{m} {'incremental' if what == 'decode' else 'recompute'}, batch {B}")
                    if what == 'decode':
                        ax_m.plot([r['gen_len'] for r in rs], [r['peak_mem_mb'] for r in rs], style, color=color,
                                  marker=marker, label=f"{m}, batch {B}")
    finish(fig, (ax_t, ax_m), 'tokens generated', ('ms per decoding step', 'decoding state (MB)'), path)


def plot(rows, path):
    plt = pyplot(path)
    if not plt:
        return
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for what, style in (('train_step', '-'), ('mixer_fwdbwd', '--')):
        for m, color in zip(MIXERS, ('tab:blue', 'tab:orange')):
            rs = sorted((r for r in rows if r['mixer'] == m and r['what'] == what), key=lambda r: r['seq_len'])
            if not rs:
                continue
            T = [r['seq_len'] for r in rs]
            ax_t.plot(T, [r['ms'] * 1000 / (r['batch_size'] * r['seq_len']) for r in rs], style, color=color, marker='o', label=f"{m} {what}")
            mem = [(r['seq_len'], r['peak_mem_mb'] * 1024 / (r['batch_size'] * r['seq_len'])) for r in rs if r['peak_mem_mb']]
            if mem:
                ax_m.plot(*zip(*mem), style, color=color, marker='o', label=f"{m} {what}")
    finish(fig, (ax_t, ax_m), 'sequence length (tokens per step fixed)', ('time per token (µs)', 'memory per token (KiB)'), path)


def positive_int(text):
    """An argparse type: an integer >= 1, or a message that says so (argparse prints it and exits with 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: lengths, batches, tokens and repeats are integers >= 1")
    return value


def positive_ints(text):
    return [positive_int(x) for x in text.split(',')]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--dtype', default='auto', choices=('auto', 'float32', 'bfloat16', 'float16'),
                    help="autocast dtype; auto: as train.py chooses it (bf16 only where it is fast)")
    ap.add_argument('--seq_lens', type=positive_ints, default=None, help='comma-separated lengths (tokens), each >= 1')
    ap.add_argument('--tokens', type=positive_int, default=None, help='tokens per step (default: the longest length)')
    ap.add_argument('--warmup', type=int, default=0, help='untimed calls after the first one')
    ap.add_argument('--repeats', type=positive_int, default=3)
    ap.add_argument('--compile', action='store_true', help='torch.compile the model and the mixer')
    ap.add_argument('--quick', action='store_true', help='lengths 128, 1024, 8192 and 2 repeats')
    ap.add_argument('--partners', default='none', choices=('none', 'ema', 'selective'),
                    help="the Grassmann mixer's running summaries (GPTConfig.partners)")
    ap.add_argument('--grassmann', default='', help="config files of a study arm, comma-separated: its model keys make "
                    "the Grassmann side (the attention side shares its vocabulary and sizes); the mixer rows time one "
                    "Grassmann layer, also for a hybrid")
    ap.add_argument('--profile', action='store_true', help='write bench_trace_<mixer>_<T>.json per train step')
    ap.add_argument('--generate', action='store_true', help='time decoding against generated length instead')
    ap.add_argument('--gen_lens', type=positive_ints, default=None)
    ap.add_argument('--gen_batches', type=positive_ints, default=[1, 32])
    ap.add_argument('--recompute_max', type=int, default=2048, help='longest context for the recompute baseline')
    ap.add_argument('--one_process', action='store_true', help='measure every length in this process')
    ap.add_argument('--json', help='write the rows to this file')
    ap.add_argument('--plot', default='bench.png', help="log-log figure ('' for none)")
    args = ap.parse_args()
    gpu = args.device.startswith('cuda')
    if args.seq_lens is None:
        args.seq_lens = [128, 1024, 8192] if args.quick else [2**k for k in range(7, 17 if gpu else 14)]
    if args.quick:
        args.repeats = 2
    args.tokens = args.tokens or max(args.seq_lens)
    chosen = args.dtype == 'auto'
    args.dtype = pick(args.device, args.dtype)[1]
    if not gpu:
        keep_freed_memory()
    torch.manual_seed(0)
    ctx = nullcontext() if args.dtype == 'float32' else torch.autocast(args.device.split(':')[0], dtype=getattr(torch, args.dtype))
    name = device_name(args.device)  # the GPU's, or the CPU's model and whether it has fast bf16
    print(f"{name}, torch {torch.__version__}, {args.dtype}{' (auto)' if chosen else ''}, {args.tokens} tokens per step, "
          f"compile={args.compile}, median of {args.repeats} after {1 + args.warmup} warm-up, Grassmann partners={args.partners}"
          + (f", Grassmann arm {args.grassmann}" if args.grassmann else ''))
    if args.generate:
        args.gen_lens = args.gen_lens or ([32, 128, 512, 2048] if args.quick else [32, 128, 512, 1024, 2048, 4096, 8192])
        rows = bench_generate(args, ctx)
        print_generate_table(rows)
        targets = check_generate_targets(rows)
    else:
        rows = bench_sweep(args, ctx)
        print_table(rows)
        targets = check_targets(rows)
    print("\ntargets:")
    for text, met in targets:
        print(f"  [{'met' if met else 'not met' if met is False else '-'}] {text}")
    if args.json:  # every row says what made it: the code, the machine, the time
        commit, when = code_version(), time.strftime('%Y-%m-%d %H:%M:%S %Z')
        with open(args.json, 'w') as f:
            json.dump([dict(r, device=name, torch=torch.__version__, dtype=args.dtype, commit=commit, time=when) for r in rows], f, indent=1)
    if args.plot:
        (plot_generate if args.generate else plot)(rows, args.plot)


def bench_sweep(args, ctx):
    if len(args.seq_lens) > 1 and not args.one_process:
        return [r for T in args.seq_lens for r in bench_in_child(args, T)]
    rows = []
    for T in args.seq_lens:
        if args.tokens % T:
            raise SystemExit(f"bench.py: error: --tokens={args.tokens} is not a multiple of sequence length {T}")
        for mixer in MIXERS:
            rows += bench_one(mixer, T, args.tokens // T, args, ctx)
            release_memory(args.device)
            print(f"  done: {mixer} T={T}", flush=True)
    if args.compile:
        print("\ncompile time (s, first call): " + ", ".join(
            f"{r['mixer']} {r['what']} {r['seq_len']}: {r['compile_s']:.1f}" for r in rows))
    return rows


if __name__ == '__main__':
    main()
