"""
Compare finished training runs from their results.json files: a Markdown table and two figures.
Runs whose configs differ only in `seed` (and in where they were written) form one group; the table
gives each group's mean ± std over seeds, the gap to the attention baseline, and, with two or more
seeds on both sides, Welch's t-test on best validation perplexity and, where two groups share two seeds
or more, the paired t-test by seed (stats.py). Runs in different units (tokenizer,
WikiText-2 variant, how `<unk>` was encoded) are never compared, nor runs in different dtypes unless
--mixed_dtypes says so; the machines and code versions behind the table are listed, with a warning where
runs read different data. With --paired, groups whose names differ only in 'attention' / 'grassmann'
(make recipes) also get one row per pair: both models and the gap.
With --baselines, the named groups instead of the attention groups are those every other is measured against.
With --chain, a decomposition of a gap: each step from one arm to the next (e.g. full attention ->
windowed attention -> the Grassmann mixer -> its controls), with the change and both tests' p of each step.

Usage:
    python compare.py out/wt2/* --out results/wt2
    python compare.py 'out/wt2/*' --out results/wt2          # a quoted glob works too
    python compare.py out/paper/*_l6-* --out results/paper_l6 --published "the paper" 248.4 275.7
    python compare.py results/recipes/runs/* --out results/recipes --paired
    python compare.py out/stage4/attention_post-seed42 --reproduces results/stage4/runs/attention_post-seed42
    python compare.py results/stage6/machines/amd-epyc-no-fast-bf16/runs/attention_post-seed42 \
        --reproduces results/stage6/runs/attention_post-seed42 --within 0.005
    python compare.py results/stage6/runs/* --out results/stage6 \
        --chain attention_post,attention_post_window16,grassmann_pre_all_learned_sub4,grassmann_pre_all_learned_sub4_linear
    python compare.py results/stage6/runs/* --out results/stage6 --baselines attention_post,grassmann_pre_all_learned_sub4

Writes DIR/results.md, DIR/val_ppl.png (validation perplexity per epoch, every run, one colour per
model) and DIR/best.png (best validation and test perplexity per model, mean ± std). Without
matplotlib the table is still written and the figures are skipped, with a message.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

from configurator import arm_name
from stats import paired, welch

# keys that say where or how a run was written, not what was trained: ignored when grouping seeds
IO_KEYS = {'seed', 'out_dir', 'wandb_log', 'wandb_project', 'wandb_run_name', 'init_from', 'eval_only',
           'log_interval', 'compile', 'device', 'checkpoint_every', 'deadline'}
# keys that must match across every run compared: perplexities are only comparable under them
SAME_KEYS = ('dataset', 'block_size', 'units', 'eval_stride')


def load_runs(args):
    """{run folder: results} for every folder named (or matched by a glob) that holds a complete results.json."""
    runs = {}
    for arg in args:
        for folder in sorted(glob.glob(arg)) or [arg]:
            path = os.path.join(folder, 'results.json')
            if not os.path.isfile(path):
                print(f"skipped {folder}: no results.json (an unfinished or failed run?)")
                continue
            try:
                with open(path) as f:
                    r = json.load(f)
                r['config'], r['best']['val_ppl'], r['test']['ppl'], r['history']  # the fields we need
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                print(f"skipped {folder}: results.json is not valid JSON ({e}; half-written?)")
                continue
            except (KeyError, TypeError) as e:
                print(f"skipped {folder}: results.json lacks {e} (written by another version?)")
                continue
            runs[folder] = r
    return runs


def setting(r):
    """What must match for perplexities to compare: the effective stride is block_size where unrecorded."""
    cfg = r['config']
    stride = r.get('eval_stride') or cfg.get('eval_stride') or cfg['block_size']
    return cfg['dataset'], cfg['block_size'], units_of(r), stride


def units_of(r):
    """The units of a run's losses; runs from before units were recorded name only their tokenizer."""
    return r.get('units') or f"{r.get('tokenizer', '?')}, units not recorded"


def by(runs, key):
    """{key(results): [the folders of the runs that give it]}, in the runs' order."""
    out = {}
    for folder, r in runs.items():
        out.setdefault(key(r), []).append(folder)
    return out


def machines(runs):
    """Where and how the runs trained: device, dtype and torch, with the count of each where they differ."""
    seen = by(runs, lambda r: f"{r.get('device_name', r.get('device'))}, {r.get('dtype')}, torch {r.get('torch')}")
    if len(seen) == 1:
        return next(iter(seen))
    mixed = ' (**mixed dtypes**: passed --mixed_dtypes)' if len(by(runs, lambda r: r.get('dtype'))) > 1 else ''
    return f"on {len(seen)} kinds of machine{mixed}: " + '; '.join(f"{w} ({len(fs)} run{'s' * (len(fs) > 1)})" for w, fs in seen.items())


def train_defaults():
    """train.py's defaults: a key that a run's train.py did not have yet counts as its default (what that run did)."""
    from configurator import script_defaults
    return script_defaults(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'train.py'))


def group_runs(runs):
    """[(label, [folders])], attention groups first: runs whose configs differ only in IO_KEYS share a group.
    A key that a run's train.py did not have yet counts as train.py's default (what that run did)."""
    defaults = train_defaults()
    groups = {}
    for folder, r in runs.items():
        cfg = {**defaults, **r['config']}
        key = json.dumps({k: v for k, v in cfg.items() if k not in IO_KEYS}, sort_keys=True)
        groups.setdefault(key, []).append(folder)
    configs = {k: json.loads(k) for k in groups}
    # folders named <arm>-seed<N> (make study, make reproduce) name their group
    names = {k: {arm_name(f) for f in folders} if all(re.search(r'-seed\d+$', os.path.normpath(f)) for f in folders)
             else {None} for k, folders in groups.items()}
    labels = []
    for key, folders in groups.items():
        cfg = configs[key]
        if len(names[key]) == 1 and None not in names[key] and all(names[o] != names[key] for o in groups if o != key):
            label = next(iter(names[key]))  # the folders name the arm (make study, make reproduce)
        else:  # its mixer, plus whatever sets it apart from the other groups of that mixer
            others = [c for k, c in configs.items() if k != key and c.get('mixer') == cfg.get('mixer')]
            extra = sorted(k for k in cfg if any(o.get(k) != cfg[k] for o in others))
            label = cfg.get('mixer', '?') + (f" ({', '.join(f'{k}={cfg[k]}' for k in extra)})" if extra else '')
        labels.append((label, folders, cfg.get('mixer') == 'attention'))
    return [(label, folders) for label, folders, att in sorted(labels, key=lambda g: (not g[2], g[0]))], \
           [label for label, _, att in labels if att]


def mean_std(xs, fmt='{:.2f}'):
    return fmt.format(statistics.mean(xs)) + (f" ± {fmt.format(statistics.stdev(xs))}" if len(xs) > 1 else '')


def table(runs, groups, baselines):
    """One row per group; a gap column and a Welch test against each attention group (baseline)."""
    base = {b: [runs[f]['best']['val_ppl'] for f in dict(groups)[b]] for b in baselines}
    by_seed = {label: best_by_seed(runs, folders) for label, folders in groups}
    gap_heads = ['gap to attention'] if len(base) == 1 else [f"gap to {b}" for b in base]
    lines = ['| model | params | seeds | best val ppl | test ppl | test bpb | best epoch | tokens/s | wall time | '
             + ' | '.join(gap_heads) + ' |', '| --- ' + '| ---: ' * (8 + len(gap_heads)) + '|']
    notes = []
    for label, folders in groups:
        rs = [runs[f] for f in folders]
        val = [r['best']['val_ppl'] for r in rs]
        tok_s = [statistics.mean(h['tokens_per_s'] for h in r['history']) for r in rs]
        gaps = [f"{(statistics.mean(val) - statistics.mean(b)) / statistics.mean(b):+.1%}" if name != label else '-'
                for name, b in base.items()]
        lines.append(f"| {label} | {rs[0]['n_params']:,} | {len(rs)} | {mean_std(val)} | "
                     f"{mean_std([r['test']['ppl'] for r in rs])} | "
                     f"{mean_std([r['test']['bpb'] for r in rs], '{:.4f}') if all('bpb' in r['test'] for r in rs) else '-'} | "
                     f"{mean_std([r['best']['epoch'] for r in rs])} | {mean_std(tok_s, '{:,.0f}')} | "
                     f"{mean_std([r['wall_time_s'] / 60 for r in rs], '{:.1f}')} min | {' | '.join(gaps or ['-'])} |")
        cut = [f"{r['iter']} of {r['max_iters']}" for r in rs if r.get('completed') is False]
        if cut:  # a deadline stopped them: their numbers are not final
            notes.append(f"- {label}: {len(cut)} of {len(rs)} runs incomplete (stopped at iteration {', '.join(cut)}).")
        for name, base_val in base.items():
            if name == label:
                continue
            if len(val) >= 2 and len(base_val) >= 2:
                t, df, p = welch(val, base_val)
                verdict = 'significant' if p < 0.05 else 'not significant'
                notes.append(f"- {label} vs {name}, best val ppl: Welch's t = {t:.2f}, df = {df:.1f}, "
                             f"p = {p:.3g}: the gap is {verdict} at the 5% level{paired_note(by_seed[label], by_seed[name])}.")
            else:
                notes.append(f"- {label} vs {name}: fewer than two seeds on a side, so no significance test.")
    return '\n'.join(lines + [''] + notes)


def recall_table(runs, groups, baselines):
    """Where each group's perplexity comes from: its recall tokens (a bigram its window has shown before)
    and the others, on validation (the best epoch) and test (the best weights), beside each baseline's.
    Groups whose runs predate the split are left out."""
    split = [(label, [runs[f] for f in folders]) for label, folders in groups
             if all('recall_ppl' in runs[f]['test'] and 'val_recall_ppl' in runs[f]['best'] for f in folders)]
    if not split:
        return ''
    def stat(rs, where, key):
        return [r[where][key] for r in rs]
    base = {b: dict(split)[b] for b in baselines if b in dict(split)}
    heads = [f"{g} gap to {b}" for b in base for g in ('recall', 'other')]
    lines = ['| ' + ' | '.join(['model', 'seeds', 'val recall ppl', 'val other ppl', 'test recall ppl', 'test other ppl',
                                 'recall tokens (val, test)'] + heads) + ' |', '| --- ' + '| ---: ' * (6 + len(heads)) + '|']
    for label, rs in split:
        gaps = []
        for b, brs in base.items():
            for g in ('recall', 'other'):
                mine, theirs = (statistics.mean(stat(x, 'best', f'val_{g}_ppl')) for x in (rs, brs))
                gaps.append('-' if b == label else f"{(mine - theirs) / theirs:+.1%}")
        share = ', '.join(f"{r0[w][f'{p}recall_tokens'] / (r0[w][f'{p}recall_tokens'] + r0[w][f'{p}other_tokens']):.1%}"
                          for r0 in rs[:1] for w, p in (('best', 'val_'), ('test', '')))
        lines.append(f"| {label} | {len(rs)} | {mean_std(stat(rs, 'best', 'val_recall_ppl'))} | "
                     f"{mean_std(stat(rs, 'best', 'val_other_ppl'))} | {mean_std(stat(rs, 'test', 'recall_ppl'))} | "
                     f"{mean_std(stat(rs, 'test', 'other_ppl'))} | {share} |" + ''.join(f" {g} |" for g in gaps))
    return '\n'.join(['## Recall tokens and the others (GRASSMANN.md, "Recall: what perplexity hides")', '',
                      "A recall token's bigram occurred earlier in its evaluation window; gaps are of the mean "
                      "validation perplexity of each group.", ''] + lines) + '\n'


def best_by_seed(runs, folders):
    """{seed: best validation perplexity} of one group's runs (the paired test matches runs by seed)."""
    return {runs[f]['config'].get('seed'): runs[f]['best']['val_ppl'] for f in folders}


def paired_note(x, y):
    """'; paired by seed: ...' where the two groups share two seeds or more, else nothing."""
    test = paired(x, y)
    if test is None:
        return ''
    t, df, p, n = test
    return f"; paired by seed ({n} seeds): t = {t:.2f}, df = {df}, p = {p:.3g}"


def provenance(runs):
    """Which code produced the runs (results.json's git commit), and a warning where they read different
    data (the split files' sha256) or predate both records."""
    versions, data, unrecorded = {}, {}, []
    for folder, r in runs.items():
        code = r.get('code') or {}
        commit = code.get('commit') or 'not recorded'
        version = commit[:12] + (' with uncommitted changes' if code.get('dirty') else '')
        versions.setdefault(version, []).append(os.path.basename(os.path.normpath(folder)))
        if r.get('data'):
            data.setdefault(json.dumps(r['data'].get('sha256'), sort_keys=True), []).append(folder)
        else:
            unrecorded.append(folder)
    lines = ['Code: ' + '; '.join(f"`{v}` ({len(fs)} run{'s' * (len(fs) > 1)})" for v, fs in sorted(versions.items())) + '.']
    if len(data) > 1:
        listing = '; '.join(f"{', '.join(os.path.basename(os.path.normpath(f)) for f in fs)}: {json.loads(k)}" for k, fs in data.items())
        lines.append(f"**Warning: these runs read different data** (the split files' sha256 differ): {listing}.")
        print(f"compare.py: warning: the runs read different data: {listing}", file=sys.stderr)
    if unrecorded:
        lines.append(f"{len(unrecorded)} of {len(runs)} runs predate the record of their data's sha256 (before one-token <unk>).")
    return '\n'.join(lines)


def reproduction(ref, new, within=None):
    """Whether run `new` repeats run `ref`: (True if its best validation perplexity is ref's to the two
    decimals tables print, or with `within` to that fraction of it, the report). The same code path, data
    and kind of CPU give the same numbers bit for bit; another CPU model in float32 the same computation
    up to the order of its roundings. The report says which, and names what differs where they differ."""
    defaults = json.loads(json.dumps(train_defaults()))  # as a results.json holds them: tuples become lists
    where = IO_KEYS - {'seed', 'compile'} | {'wandb_group'}  # here the seed and compiling count: they change the numbers
    trained = [{k: v for k, v in {**defaults, **r['config']}.items() if k not in where} for r in (ref, new)]
    problems = [f"{k} {trained[0].get(k)!r} -> {trained[1].get(k)!r}" for k in sorted(trained[0].keys() | trained[1].keys())
                if trained[0].get(k) != trained[1].get(k)]
    problems += [f"{what} {ref.get(what)!r} -> {new.get(what)!r}" for what in ('dtype', 'units') if ref.get(what) != new.get(what)]
    if (ref.get('data') or {}).get('sha256') != (new.get('data') or {}).get('sha256'):
        problems.append("the data's sha256")
    pairs = [("test loss", ref['test']['loss'], new['test']['loss'])]
    if len(ref['history']) != len(new['history']):
        problems.append(f"{len(ref['history'])} -> {len(new['history'])} evaluations")
    for a, b in zip(ref['history'], new['history']):
        pairs += [(f"{k} at iteration {a['iter']}", a[k], b[k]) for k in ('train_loss', 'val_loss')]
    differ = [f"{what} {a!r} -> {b!r}" for what, a, b in pairs if a != b]
    want, got = (f"{r['best']['val_ppl']:.2f}" for r in (ref, new))
    if within is None:
        same, verdict = want == got, f"{'the same' if want == got else 'NOT the same'} to two decimals"
    else:
        off = new['best']['val_ppl'] / ref['best']['val_ppl'] - 1
        same, verdict = abs(off) <= within, f"{off:+.3%}, {'within' if abs(off) <= within else 'NOT within'} {within:.1%}"
    lines = [f"best val ppl {want} -> {got}: {verdict}",
             'every loss bit for bit the same (' + ', '.join(what for what, _, _ in pairs) + ')' if not differ
             else f"{len(differ)} of {len(pairs)} losses differ: " + '; '.join(differ)]
    if problems:
        lines.append('the runs differ in: ' + '; '.join(problems))
    return same and not problems, '\n'.join(lines)


def paired_table(runs, groups):
    """One row per pair of groups named alike but for 'attention' / 'grassmann': both models and the gap."""
    val = {label: [runs[f]['best']['val_ppl'] for f in folders] for label, folders in groups}
    lines = ['| recipe | seeds | attention best val ppl | grassmann best val ppl | gap |', '| --- | ---: | ---: | ---: | ---: |']
    for label in val:
        other = label.replace('attention', 'grassmann')
        if 'attention' in label and other in val:
            a, g = statistics.mean(val[label]), statistics.mean(val[other])
            name = label.replace('_attention', '').replace('attention_', '').replace('attention', '') or 'both'
            lines.append(f"| {name} | {len(val[label])} / {len(val[other])} | {mean_std(val[label])} | "
                         f"{mean_std(val[other])} | {(g - a) / a:+.1%} |")
    return '\n'.join(['## The two models side by side (best validation perplexity)', ''] + lines) + '\n'


def chain_table(runs, groups, chain):
    """A gap taken apart: one row per step from one arm of `chain` to the next, its change in mean best
    validation perplexity (and as a share of the first arm's) with Welch's p over seeds and the paired
    test's over the seeds both arms ran, then the whole."""
    val = {label: [runs[f]['best']['val_ppl'] for f in folders] for label, folders in groups}
    seeds = {label: best_by_seed(runs, folders) for label, folders in groups}
    missing = [c for c in chain if c not in val]
    if missing:
        raise ValueError(f"--chain names {', '.join(missing)}, which no group of these runs is called "
                         f"(the groups: {', '.join(val)})")
    lines = ['| step | from | to | change in best val ppl | Welch p | paired p |', '| --- | --- | --- | ---: | ---: | ---: |']
    steps = list(zip(chain, chain[1:])) + ([(chain[0], chain[-1])] if len(chain) > 2 else [])
    for i, (a, b) in enumerate(steps):
        ma, mb = statistics.mean(val[a]), statistics.mean(val[b])
        p = f"{welch(val[b], val[a])[2]:.3g}" if min(len(val[a]), len(val[b])) >= 2 else '- (one seed)'
        pair = paired(seeds[b], seeds[a])
        lines.append(f"| {i + 1 if i < len(chain) - 1 else 'all'} | {a} ({mean_std(val[a])}) | {b} ({mean_std(val[b])}) | "
                     f"{mb - ma:+.2f} ({(mb - ma) / statistics.mean(val[chain[0]]):+.1%}) | {p} | "
                     f"{f'{pair[2]:.3g}' if pair else '-'} |")
    return '\n'.join(['## The gap, step by step (best validation perplexity)', ''] + lines) + '\n'


def published_table(runs, groups, baselines, published):
    """Our gap beside published ones: each source's Transformer and Grassmann validation perplexity.
    Perplexities under different tokenizers are not comparable with each other; the relative gap is."""
    lines = ['| source | Transformer | Grassmann | gap |', '| --- | ---: | ---: | ---: |']
    for label, att, gra in published:
        att, gra = float(att), float(gra)
        lines.append(f"| {label} (published) | {att:.2f} | {gra:.2f} | {(gra - att) / att:+.1%} |")
    base = next((folders for label, folders in groups if label in baselines), None)
    for label, folders in groups:
        if base and label not in baselines:
            a = statistics.mean(runs[f]['best']['val_ppl'] for f in base)
            g = statistics.mean(runs[f]['best']['val_ppl'] for f in folders)
            lines.append(f"| these runs: {label} | {a:.2f} | {g:.2f} | {(g - a) / a:+.1%} |")
    return '\n'.join(['## Beside the published numbers (best validation perplexity)', ''] + lines) + '\n'


def figures(runs, groups, out):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: figures skipped (pip install matplotlib)")
        return []
    colours = {label: f"C{i}" for i, (label, _) in enumerate(groups)}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, folders in groups:
        for i, f in enumerate(folders):
            h = runs[f]['history']
            ax.plot([e['epoch'] for e in h], [e['val_ppl'] for e in h], color=colours[label], marker='o', ms=3,
                    alpha=0.8, label=label if i == 0 else None)
    ax.set_xlabel('epoch')
    ax.set_ylabel('validation perplexity')
    ax.set_yscale('log')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'val_ppl.png'), dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    # points, not bars: a bar on an axis that does not start at 0 would exaggerate the gaps
    for j, (what, key) in enumerate((('best val', 'best'), ('test', 'test'))):
        for i, (label, folders) in enumerate(groups):
            xs = [runs[f][key]['val_ppl' if key == 'best' else 'ppl'] for f in folders]
            x = i + (j - 0.5) * 0.3
            ax.errorbar(x, statistics.mean(xs), yerr=statistics.stdev(xs) if len(xs) > 1 else 0, fmt='o' if j == 0 else 's',
                        color=colours[label], mfc=colours[label] if j == 0 else 'white', ms=8, capsize=5,
                        label=f"{what}: mean ± std" if i == 0 else None)
            ax.plot([x + 0.08] * len(xs), xs, 'k.', ms=4, label='one seed' if i == j == 0 else None)
    ax.set_xticks(range(len(groups)), [label for label, _ in groups], fontsize=8, rotation=20 if len(groups) > 4 else 0,
                  ha='right' if len(groups) > 4 else 'center')
    ax.set_ylabel('perplexity')
    ax.grid(True, axis='y', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, 'best.png'), dpi=120)
    plt.close(fig)
    return ['val_ppl.png', 'best.png']


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('runs', nargs='+', help='run folders (out_dir of train.py), or globs')
    ap.add_argument('--out', help='folder for results.md and the figures (required unless --reproduces)')
    ap.add_argument('--reproduces', metavar='REF', help='instead of a table: whether the one run given repeats run '
                                                       'REF (same best val ppl to two decimals; exit status 1 if not)')
    ap.add_argument('--within', type=float, metavar='FRACTION', help='with --reproduces: the run repeats REF if its best '
                                                                      'val ppl is within this fraction of it (e.g. 0.005)')
    ap.add_argument('--published', nargs=3, action='append', default=[], metavar=('SOURCE', 'TRANSFORMER_PPL', 'GRASSMANN_PPL'),
                    help='a published pair of validation perplexities to set beside ours (repeatable)')
    ap.add_argument('--paired', action='store_true', help="a table of each attention group beside the grassmann group "
                                                          "named alike (make recipes' arms)")
    ap.add_argument('--chain', type=lambda s: s.split(','), default=None, metavar='ARM,ARM[,ARM...]',
                    help='a decomposition of the gap from the first arm to the last, one step per arm')
    ap.add_argument('--baselines', type=lambda s: s.split(','), default=None, metavar='ARM[,ARM...]',
                    help='the groups every other is measured against (gap, both tests); default: the attention groups')
    ap.add_argument('--mixed_dtypes', action='store_true', help='compare runs that trained in different dtypes '
                                                                    '(refused without it)')
    args = ap.parse_args()
    if args.chain is not None and len(args.chain) < 2:
        sys.exit(f"compare.py: error: --chain {','.join(args.chain)}: name at least two arms, separated by commas")
    for source, *ppls in args.published:
        try:
            [float(p) for p in ppls]
        except ValueError:
            sys.exit(f"compare.py: error: --published {source!r}: {ppls} must be two perplexities (numbers)")
    runs = load_runs(args.runs + ([args.reproduces] if args.reproduces else []))
    if not runs:
        sys.exit("compare.py: error: no run with a complete results.json among " + ' '.join(args.runs))
    if args.reproduces:
        if len(runs) != 2 or args.reproduces not in runs:
            sys.exit(f"compare.py: error: --reproduces {args.reproduces} compares one complete run with it, not "
                     f"{', '.join(f for f in runs if f != args.reproduces) or 'none'}")
        new = next(f for f in runs if f != args.reproduces)
        same, report = reproduction(runs[args.reproduces], runs[new], args.within)
        print(f"{new} against {args.reproduces}:\n{report}")
        sys.exit(0 if same else f"compare.py: error: {new} does not repeat {args.reproduces}")
    if not args.out:
        sys.exit("compare.py: error: --out is required (the folder for results.md and the figures)")
    settings = by(runs, setting)
    if len(settings) > 1:
        listing = '; '.join(f"{dict(zip(SAME_KEYS, s))}: {', '.join(fs)}" for s, fs in settings.items())
        sys.exit(f"compare.py: error: these runs are not comparable, their {'/'.join(SAME_KEYS)} differ: "
                 f"{listing}. Compare each set on its own.")
    dtypes = by(runs, lambda r: r.get('dtype'))
    if len(dtypes) > 1 and not args.mixed_dtypes:  # bf16 and float32 runs of one model differ by more than rounding
        listing = '; '.join(f"{d}: {', '.join(fs)}" for d, fs in dtypes.items())
        sys.exit(f"compare.py: error: these runs trained in different dtypes ({listing}): a table keeps to one. "
                 "Compare each set on its own, or pass --mixed_dtypes to set them side by side (results.md then says so).")
    groups, baselines = group_runs(runs)
    if args.baselines:
        unknown = [b for b in args.baselines if b not in dict(groups)]
        if unknown:
            sys.exit(f"compare.py: error: --baselines names {', '.join(unknown)}, which no group of these runs is called "
                     f"(the groups: {', '.join(label for label, _ in groups)})")
        baselines = args.baselines
    try:
        chain = chain_table(runs, groups, args.chain) if args.chain else ''
    except ValueError as e:
        sys.exit(f"compare.py: error: {e}")
    recall = recall_table(runs, groups, baselines)
    os.makedirs(args.out, exist_ok=True)
    figs = figures(runs, groups, args.out)
    any_run = next(iter(runs.values()))
    text = (f"# Results\n\n{len(runs)} runs: {', '.join(runs)}.\n\n"
            f"Units: {units_of(any_run)}.\n\n"
            f"Data set `{any_run['config']['dataset']}` ({any_run.get('tokenizer', '?')} tokens), block size "
            f"{any_run['config']['block_size']}, evaluation stride {any_run.get('eval_stride', any_run['config']['block_size'])}; "
            f"{machines(runs)}.\n"
            f"Perplexities are means ± standard deviations over seeds; tokens/s is the mean over evaluations.\n\n"
            + provenance(runs) + '\n\n'
            + table(runs, groups, baselines) + '\n'
            + (('\n' + recall) if recall else '')
            + (('\n' + paired_table(runs, groups)) if args.paired else '')
            + (('\n' + chain) if chain else '')
            + (('\n' + published_table(runs, groups, baselines, args.published)) if args.published else '')
            + ''.join(f"\n![{f}]({f})\n" for f in figs))
    tmp = os.path.join(args.out, 'results.md.tmp')
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, os.path.join(args.out, 'results.md'))
    print(text)
    print(f"wrote {os.path.join(args.out, 'results.md')}")


if __name__ == '__main__':
    main()
