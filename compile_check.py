"""
Whether a table's runs compile (torch.compile) on this machine: a few iterations of each arm, eager and
compiled, under the table's protocol. Compiled wins only where it is at least --speedup times faster in
tokens/s (the first iteration, which compiles, left out) on every arm, and its training loss at the last
iteration agrees with eager's to --rtol (relative); else the table runs eager. The table keeps one
setting: the first machine's decision is written once and read by every later run (make stage7).

Usage:
    python compile_check.py --out results/stage7/compile.json --protocol config/stage7/protocol.py \
        --arms study/attention_post,study/grassmann_pre_all_learned_sub4_unnormalised
    python compile_check.py --out /tmp/c.json --arms study/attention_post --iters 4 --train_args="--dtype=float32"
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

from hardware import device_name, pick

ROOT = os.path.dirname(os.path.abspath(__file__))


def measure(arm, compiled, args):
    """tokens/s and the training loss at the last iteration of `args.iters` iterations of one arm."""
    out = os.path.join(args.work, f"{arm.replace('/', '_').replace(',', '+')}-{'compiled' if compiled else 'eager'}")
    configs = [os.path.join(ROOT, 'config', f'{c}.py') for c in arm.split(',')]
    cmd = [sys.executable, os.path.join(ROOT, 'train.py'), args.protocol, *configs, f'--out_dir={out}',
           f'--max_iters={args.iters}', f'--eval_interval={args.iters}', f'--log_interval={args.iters}',
           f'--compile={compiled}', '--seed=42', *shlex.split(args.train_args)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"compile_check.py: error: {arm} ({'compiled' if compiled else 'eager'}) failed:\n{p.stderr[-2000:]}")
    loss = re.search(rf'iter {args.iters}/\d+ \| epoch [\d.]+ \| loss ([\d.]+)', p.stdout)
    if loss is None:  # train.py's log line changed, or the run stopped before the last iteration
        sys.exit(f"compile_check.py: error: no training loss at iteration {args.iters} in {arm}'s log ({out}/)")
    with open(os.path.join(out, 'results.json')) as f:
        tok_s = json.load(f)['history'][-1]['tokens_per_s']
    return {'tokens_per_s': tok_s, 'loss': float(loss.group(1))}


def decide(rows, speedup, rtol):
    """Compile if, for every arm, compiled is at least `speedup` times eager's tokens/s and its loss agrees to rtol."""
    return all(r['compiled']['tokens_per_s'] >= speedup * r['eager']['tokens_per_s'] and
               abs(r['compiled']['loss'] - r['eager']['loss']) <= rtol * abs(r['eager']['loss']) for r in rows.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True, help='the decision and its measurements (JSON)')
    ap.add_argument('--arms', required=True, help='comma-separated arms; an arm is CONFIG[+CONFIG...] under config/')
    ap.add_argument('--protocol', default=os.path.join(ROOT, 'config', 'stage7', 'protocol.py'))
    ap.add_argument('--iters', type=int, default=50)
    ap.add_argument('--speedup', type=float, default=1.15)
    ap.add_argument('--rtol', type=float, default=1e-3)
    ap.add_argument('--work', default='out/compile_check', help='where the short runs write')
    ap.add_argument('--train_args', default='', help='more train.py arguments, e.g. "--dataset=slice"')
    args = ap.parse_args()
    if args.iters < 2:
        sys.exit(f"compile_check.py: error: --iters={args.iters}: at least 2 (the first iteration compiles and is not timed)")
    rows = {}
    for arm in args.arms.split(','):
        rows[arm] = {mode: measure(arm.replace('+', ','), mode == 'compiled', args) for mode in ('eager', 'compiled')}
        r = rows[arm]
        print(f"{arm}: eager {r['eager']['tokens_per_s']:,.0f} tok/s, loss {r['eager']['loss']:.4f}; compiled "
              f"{r['compiled']['tokens_per_s']:,.0f} tok/s ({r['compiled']['tokens_per_s'] / r['eager']['tokens_per_s']:.2f}x), "
              f"loss {r['compiled']['loss']:.4f}")
    compile_ = decide(rows, args.speedup, args.rtol)
    print(f"decision: {'compile' if compile_ else 'eager'} (compiled must be >= {args.speedup}x eager's tokens/s on every arm "
          f"with its loss at iteration {args.iters} within {args.rtol:g} of eager's)")
    result = {'compile': compile_, 'arms': rows, 'iters': args.iters, 'speedup': args.speedup, 'rtol': args.rtol,
              'protocol': os.path.relpath(args.protocol, ROOT), 'device_name': device_name(pick()[0]),
              'time': time.strftime('%Y-%m-%d %H:%M:%S %Z')}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + '.tmp', 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(args.out + '.tmp', args.out)


if __name__ == '__main__':
    main()
