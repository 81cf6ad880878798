"""
Train one model (causal attention or Grassmann) on WikiText-2, epoch by epoch, evaluating on the
whole validation split. Both models share everything here; only the `mixer` key tells them apart.

Usage:
    python train.py config/grassmann_wt2.py
    python train.py config/attention_wt2.py --epochs=1 --compile=False
    python train.py --out_dir=out-grassmann-wt2 --init_from=resume       # continue from out_dir/last.pt
    python train.py --out_dir=out-grassmann-wt2 --init_from=resume --eval_only=True   # val/test of ckpt.pt
    torchrun --standalone --nproc_per_node=4 train.py config/grassmann_wt2.py     # DDP

Each epoch visits the non-overlapping blocks of the training split in a seeded shuffled order; the
last (number of blocks mod global batch) blocks of each epoch's order are left out, a different few
each epoch. Global batch = batch_size x gradient_accumulation_steps x number of processes.
Writes out_dir/ckpt.pt (best validation loss), out_dir/last.pt (latest) and out_dir/results.json.
A resumed run starts from the settings stored in its checkpoint; config files and --key=value given
with --init_from=resume then change them (printed); out_dir, init_from, eval_only, deadline and
trust_checkpoint are never taken from the checkpoint. With patience=N a run stops N evaluations after
its best validation loss (early stopping) and counts as completed. `python train.py --help` lists
every key with its default.
"""
import json
import math
import os
import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import asdict, fields

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from checkpoints import load_checkpoint, lock_out_dir, rng_states, set_rng_states, write_atomic
from configurator import arm_name, code_version, configure
from data import epoch_order, evaluate, gather_blocks, load_meta, load_split, metrics, num_blocks, token_sha256
from hardware import auto_dtype, device_name, device_type_of, keep_freed_memory, pick
from flops import estimate_mfu
from model import GPT, GPTConfig
from prepare import units

# -----------------------------------------------------------------------------
# default config values: the 6-layer, block-128 comparison on GPT-2 BPE, trained with the seed
# reproduction's protocol; config/*_wt2.py change only the mixer, so both models share all the rest
# I/O
out_dir = 'out'
init_from = 'scratch'  # 'scratch' | 'resume' (from out_dir/last.pt)
eval_only = False  # evaluate ckpt.pt on val and test, then exit
trust_checkpoint = False  # load a checkpoint holding Python objects (train.py's before 2026-12-06): only one you know
log_interval = 10
# wandb logging
wandb_log = False
wandb_project = 'grassmann'
wandb_run_name = None  # None: out_dir's name
wandb_group = None  # None: the run's name without its '-seed<N>', so that the seeds of one arm form a group
# data
dataset = 'wikitext2'  # reads data/<dataset>/{train,val,test}.bin and meta.json
batch_size = 32
block_size = 128
gradient_accumulation_steps = 1
# model (every GPTConfig field; see model.py)
vocab_size = None  # None: meta.json's vocab_size rounded up to a multiple of 64
n_layer = 6
n_head = 4
n_embd = 256
dropout = 0.1
bias = True
mixer = 'grassmann'
norm = 'post'
reduced_dim = 32
lags = (1, 2, 4, 8, 12, 16)
lag_schedule = 'all'
plucker_eps = 1e-6
n_subspaces = 1  # study variant: H reductions, each read on its own Gr(2, r)
lag_weights = 'mean'  # 'mean' | 'learned' (study variant: a softmax over the valid lags)
pos_emb = True  # False: no position table, the lags alone carry order (any length)
init = 'normal'  # 'normal': N(0, 0.02), zero biases | 'torch': PyTorch's defaults (the seed's recipe)
partners = 'none'  # 'ema' | 'selective': running summaries of the past, paired with z_t like lags (stage 4)
n_partners = 3  # K summaries per layer, decays initialised at τ = 4, 16, 64
pairing = 'wedge'  # 'unnormalised' | 'linear': the mixer without step 4, or without its geometry | 'unit': of unit vectors
p_norm = 'none'  # 'rms': an RMS norm with a learned gain on each subspace's mean Plücker vector (stage 6 (d))
attn_window = 0  # attention reads only the last attn_window positions and its own (stage 5); 0: the whole context
attn_layers = ()  # a hybrid (stage 6): these blocks of a Grassmann model (0 = nearest the embedding) use attention
z_conv = 0  # K > 0: a causal depthwise convolution of width K on the Grassmann mixer's reduced vectors (stage 6)
# optimizer and schedule: linear warmup, then cosine decay to min_lr at lr_decay_iters
learning_rate = 1e-3
epochs = 30
max_iters = 0  # 0: epochs x iterations per epoch
lr_decay_iters = 0  # 0: max_iters
warmup_iters = 200  # the shared protocol since one token per <unk> (2026-11-30): with it, post-norm models at lr 1e-3
# without warmup stayed at the unigram loss for a whole epoch (results/recipes/); runs before it had none
min_lr = 0.0
decay_lr = True
weight_decay = 0.01
weight_decay_on = 'matrices'  # 'matrices': 2-D tensors only | 'all': every parameter (the seed's recipe)
beta1 = 0.9
beta2 = 0.999
grad_clip = 1.0  # 0: no clipping
eval_interval = 0  # iterations between evaluations; 0: once per epoch
patience = 0  # stop this many evaluations after the best validation loss (early stopping); 0: never (the paper's)
eval_stride = 0  # < block_size: score each target with at least block_size - eval_stride context; 0: block_size
checkpoint_every = 1  # evaluations between writes of last.pt and ckpt.pt; 0: at the end only (the best weights wait in memory)
deadline = 0.0  # a time.time(): past it the run stops, evaluates, and reports itself incomplete; 0: none
# system
device = 'auto'  # 'auto' | 'cpu' | 'cuda' | 'cuda:1' | 'mps'
dtype = 'auto'  # 'auto' | 'float32' | 'bfloat16' | 'float16'
compile = True
compile_mode = 'default'  # torch.compile's mode; 'reduce-overhead' replays CUDA graphs (a launch-bound GPU step)
seed = 42
# -----------------------------------------------------------------------------
config_keys = [k for k, v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str, tuple, type(None)))]
defaults = {k: globals()[k] for k in config_keys}
ckpt = None
try:
    config = configure(defaults, sys.argv[1:], script=__file__)
    if config['eval_only']:  # always the trained weights: an untrained model's perplexity is nobody's result
        config['init_from'] = 'resume'
    if config['init_from'] == 'resume':  # the run's own settings, then what this command line changes
        path = os.path.join(config['out_dir'], 'ckpt.pt' if config['eval_only'] else 'last.pt')
        try:
            ckpt = load_checkpoint(path, ('model', 'model_args', 'config', 'iter_num') + (() if config['eval_only'] else
                                   ('optimizer', 'scaler', 'best', 'history', 'elapsed', 'rng')), config['trust_checkpoint'])
        except ValueError as e:
            sys.exit(f"train.py: error: cannot {'evaluate' if config['eval_only'] else 'resume'}: {e} "
                     f"({'eval_only evaluates out_dir/ckpt.pt: point --out_dir at a trained run, or ' if config['eval_only'] else ''}"
                     "train with init_from='scratch' first)")
        stored = {k: v for k, v in ckpt['config'].items() if k in defaults}
        this_run = {k: config[k] for k in ('out_dir', 'init_from', 'eval_only', 'deadline', 'trust_checkpoint')}  # this command's own
        config = {**configure({**defaults, **stored}, sys.argv[1:]), **this_run}
        changed = [f"{k} {stored[k]!r} -> {config[k]!r}" for k in stored if stored[k] != config[k] and k not in this_run]
        if int(os.environ.get('RANK', 0)) == 0:
            print(f"resuming with the settings stored in {path}" + (f"; changed here: {', '.join(changed)}" if changed else ''))
    for key, low in (('epochs', 1), ('batch_size', 1), ('gradient_accumulation_steps', 1), ('eval_stride', 0),
                     ('max_iters', 0), ('log_interval', 1), ('eval_interval', 0), ('checkpoint_every', 0), ('patience', 0)):
        if not config[key] >= low:
            raise ValueError(f"{key}={config[key]!r}: allowed values are integers >= {low}")
    for key in ('learning_rate', 'min_lr', 'weight_decay', 'grad_clip', 'warmup_iters'):
        if not config[key] >= 0:
            raise ValueError(f"{key}={config[key]!r}: allowed values are numbers >= 0")
    choices = {'compile_mode': ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs'),
               'weight_decay_on': ('matrices', 'all'), 'dtype': ('auto', 'float32', 'bfloat16', 'float16')}
    for key, allowed in choices.items():
        if config[key] not in allowed:
            raise ValueError(f"{key}={config[key]!r}: allowed values are {', '.join(allowed)}")
    if config['eval_stride'] > config['block_size']:
        raise ValueError(f"eval_stride={config['eval_stride']} exceeds block_size={config['block_size']}: "
                         "allowed values are 0 (= block_size) to block_size")
except (ValueError, TypeError) as e:
    sys.exit(f"train.py: error: {e}")
globals().update(config)
# -----------------------------------------------------------------------------

def fmt_time(s):
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m" if s >= 3600 else f"{int(s // 60)}m{int(s % 60):02d}s"


# distributed set-up: one process per device under torchrun
ddp = int(os.environ.get('RANK', -1)) != -1
rank, world_size = (int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])) if ddp else (0, 1)
master = rank == 0
if device.startswith('cuda') and not torch.cuda.is_available() or device.startswith('mps') and not torch.backends.mps.is_available():
    sys.exit(f"train.py: error: device={device!r}, but this torch ({torch.__version__}) cannot reach one: "
             "use --device=cpu, or --device=auto (the best device there is)")
device, dtype = pick(device, dtype)  # 'auto': the best device there is, the dtype that is fast on it
if ddp:
    if device.startswith('cuda'):
        device = f"cuda:{os.environ['LOCAL_RANK']}"
        torch.cuda.set_device(device)
    dist.init_process_group(backend='nccl' if device.startswith('cuda') else 'gloo')


def leave_ddp():
    """Each rank waits for the others before the process group goes: a rank that tears gloo down while
    its peer still talks to it aborts at exit ('terminate called without an active exception')."""
    if ddp:
        dist.barrier()
        dist.destroy_process_group()


device_type = device_type_of(device)
if device_type == 'cpu' and dtype == 'float16':
    sys.exit(f"train.py: error: dtype='float16' on a CPU: its float16 matmuls are not fast (minutes per iteration); "
             f"use --dtype=auto ({auto_dtype('cpu')} on this CPU), bfloat16 or float32 (fp16 is for GPUs)")
if device_type == 'cpu':
    keep_freed_memory()
ptdtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}[dtype]
ctx = nullcontext() if dtype == 'float32' else torch.autocast(device_type=device_type, dtype=ptdtype)
torch.manual_seed(seed + rank)  # dropout differs per rank; DDP copies rank 0's initial weights
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True

# data
data_dir = os.path.join('data', dataset)
try:
    meta = load_meta(data_dir)
    train_data, val_data, test_data = (load_split(data_dir, s, meta) for s in ('train', 'val', 'test'))
except (FileNotFoundError, ValueError) as e:
    sys.exit(f"train.py: error: {e}")
train_tokens = torch.from_numpy(train_data.astype(np.int64)).to(device)  # once: each batch is gathered where it is used
data_identity = {'dataset': dataset, 'units': units(meta), 'unk_id': (meta.get('unk') or {}).get('id'),
                 'sha256': {s: meta['splits'][s]['sha256'] for s in meta['splits']},  # the source text
                 'bin_sha256': {s: token_sha256(data_dir, s) for s in ('train', 'val', 'test')},  # the tokens read
                 'tokens': {s: meta['splits'][s]['tokens'] for s in meta['splits']}}
trained_on = (ckpt or {}).get('data', {}).get('bin_sha256') if not eval_only else None  # (eval_only may read other data)
if trained_on and trained_on != data_identity['bin_sha256']:  # one run, one data set: its history would mix two
    differ = ', '.join(f'{s}.bin' for s in trained_on if trained_on[s] != data_identity['bin_sha256'].get(s))
    sys.exit(f"train.py: error: cannot resume: the tokens of {differ} in {data_dir} are not those this run trained on "
             f"(its units: {ckpt['data'].get('units')}; now: {data_identity['units']}): prepare the folder again as it "
             f"was, or point --dataset at the run's data, or start a new run in another out_dir")
code = code_version()
machine = device_name(device)  # the CPU's model and whether it has fast bf16, or the GPU's name
tokenizer_vocab = None  # a WordPiece vocabulary travels in the checkpoints, so that sample.py can decode
if 'vocab_file' in meta:
    vocab_path = os.path.join(data_dir, meta['vocab_file'])
    if not os.path.isfile(vocab_path):
        sys.exit(f"train.py: error: {vocab_path} not found, which {data_dir}/meta.json names as its vocabulary: prepare the "
                 f"folder again, `python prepare.py --out {data_dir}` with the options that made it ({units(meta)})")
    with open(vocab_path, encoding='utf-8') as f:
        tokenizer_vocab = f.read()
n_train = num_blocks(train_data, block_size)
global_batch = batch_size * gradient_accumulation_steps * world_size
iters_per_epoch = n_train // global_batch
if iters_per_epoch == 0:
    sys.exit(f"train.py: error: the training split has {n_train} blocks of {block_size + 1} tokens, "
             f"fewer than one global batch of {global_batch}: lower batch_size or block_size")
max_iters = max_iters or epochs * iters_per_epoch
lr_decay_iters = lr_decay_iters or max_iters
eval_every = eval_interval or iters_per_epoch
tokens_per_iter = global_batch * block_size

# model, from scratch or from a checkpoint
model_fields = [f.name for f in fields(GPTConfig)]
if init_from == 'resume':
    model_args = ckpt['model_args']  # the checkpoint decides the architecture
elif init_from == 'scratch':
    model_args = {k: config[k] for k in model_fields}
    model_args['vocab_size'] = vocab_size or (meta['vocab_size'] + 63) // 64 * 64
else:
    sys.exit(f"train.py: error: init_from={init_from!r}: allowed values are 'scratch' and 'resume'")
try:
    gptconf = GPTConfig(**model_args)
except ValueError as e:
    sys.exit(f"train.py: error: {e}")
if gptconf.vocab_size < meta['vocab_size']:
    sys.exit(f"train.py: error: vocab_size={gptconf.vocab_size} is below the data's vocabulary of {meta['vocab_size']:,} "
             f"ids ({data_dir}/meta.json): leave vocab_size unset (the data's, padded to a multiple of 64) or give at least "
             f"{meta['vocab_size']}")
if gptconf.block_size < block_size:
    sys.exit(f"train.py: error: block_size={block_size} exceeds the model's block_size={gptconf.block_size}")
raw_model = GPT(gptconf)
if ckpt:
    raw_model.load_state_dict(ckpt['model'])
raw_model.to(device)
if master:  # the settings are good: only now is anything written
    os.makedirs(out_dir, exist_ok=True)
    try:  # one run per folder: a second would overwrite the first's checkpoints and results (eval_only only reads)
        out_dir_lock = None if eval_only else lock_out_dir(out_dir)
    except ValueError as e:
        sys.exit(f"train.py: error: {e}")
    print(f"{gptconf.mixer} model, {raw_model.num_params():,} parameters; {dtype} on {device} ({machine})"
          f"{f' x {world_size} processes' if ddp else ''}; {iters_per_epoch} iterations per epoch")


def evaluate_split(m, split):
    """The split's metrics: loss, token perplexity, bits per byte, word-level perplexity, and the loss,
    perplexity and count of its recall tokens and of the others."""
    data = {'val': val_data, 'test': test_data}[split]
    return metrics(evaluate(m, data, block_size, batch_size, device, ctx, rank, world_size, eval_stride), meta['splits'][split])


def describe(split, r):
    groups = ' '.join(f"{g} ppl {r[f'{g}_ppl']:.2f}" for g in ('recall', 'other') if r[f'{g}_ppl'] is not None)
    return f"{split} loss {r['loss']:.4f} ppl {r['ppl']:.2f} bpb {r['bpb']:.4f} word ppl {r['word_ppl']:.2f} ({groups})"


if eval_only:
    val, test = evaluate_split(raw_model, 'val'), evaluate_split(raw_model, 'test')
    source = f"{path} (iteration {ckpt['iter_num']})"
    if master:
        print(f"{source}, eval_stride {eval_stride or block_size}: {describe('val', val)} | {describe('test', test)}")
    leave_ddp()
    sys.exit(0)

scaler = torch.amp.GradScaler(device_type, enabled=(dtype == 'float16'))
optimizer = raw_model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), device_type, weight_decay_on)
iter_num, best, history, elapsed = 0, None, [], 0.0
best_weights, best_saved = None, True  # the best weights so far, kept in memory, and whether ckpt.pt holds them
if ckpt:
    optimizer.load_state_dict(ckpt['optimizer'])
    scaler.load_state_dict(ckpt['scaler'])
    iter_num, best, history, elapsed = ckpt['iter_num'], ckpt['best'], ckpt['history'], ckpt['elapsed']
    rng = ckpt['rng'][rank] if len(ckpt['rng']) == world_size else None
    if rng:  # the dropout masks go on exactly as if the run had not stopped
        set_rng_states(rng, device_type)
    elif master:
        print(f"resuming on {world_size} processes from a checkpoint of {len(ckpt['rng'])}: dropout masks will differ")
    if best and 'best_model' in ckpt:  # last.pt alone holds the run: ckpt.pt may be older if a write was cut
        best_weights = ckpt['best_model'] or {k: v.detach().clone() for k, v in raw_model.state_dict().items()}
        best_saved = False  # rewritten at the next checkpoint
    elif best:  # a last.pt written before the best weights travelled in it
        try:
            best_weights = load_checkpoint(os.path.join(out_dir, 'ckpt.pt'), trust=trust_checkpoint)['model']
        except ValueError as e:
            sys.exit(f"train.py: error: cannot resume: the best weights: {e}")
    if master:
        print(f"resuming from {out_dir}/last.pt at iteration {iter_num}")
wandb_id = ckpt.get('wandb_id') if ckpt else None
wandb_id = wandb_id or uuid.uuid4().hex[:12]  # a resumed run goes on logging to the same wandb run
ckpt = None  # free memory

model = torch.compile(raw_model, mode=compile_mode) if compile else raw_model
train_model = DDP(model, device_ids=[int(device.split(':')[1])] if device_type == 'cuda' else None) if ddp else model


def get_lr(it):
    if not decay_lr:
        return learning_rate
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


_order = {}
def get_batch(it, micro):
    """This rank's part of micro-step `micro` of iteration `it`: a distinct slice of the epoch's order,
    gathered on the device (no host work, no copy per step)."""
    epoch, step = divmod(it, iters_per_epoch)
    if epoch not in _order:
        _order.clear()
        _order[epoch] = torch.from_numpy(epoch_order(n_train, epoch, seed)).to(device)
    start = ((step * gradient_accumulation_steps + micro) * world_size + rank) * batch_size
    return gather_blocks(train_tokens, _order[epoch][start:start + batch_size], block_size)


def checkpoint(path, rng_states, weights=None):
    """The run's state; with `weights` (the best, kept in memory) only what evaluation and sampling need."""
    state = {'model': weights or raw_model.state_dict(), 'model_args': asdict(gptconf), 'iter_num': best['iter'] if weights else iter_num,
             'best': best, 'history': history, 'config': config, 'tokenizer': meta['tokenizer'],
             'tokenizer_vocab': tokenizer_vocab, 'tokenizer_unk': data_identity['unk_id'], 'code': code, 'data': data_identity,
             'wandb_id': wandb_id}
    if weights is None:  # the best weights too, unless they are these: resuming needs no other file
        state.update(optimizer=optimizer.state_dict(), scaler=scaler.state_dict(), epoch=iter_num // iters_per_epoch,
                     step_in_epoch=iter_num % iters_per_epoch, elapsed=elapsed, rng=rng_states,
                     best_model=None if best is None or best['iter'] == iter_num else best_weights)
    written(path, lambda f: torch.save(state, f))


def write_results(test=None):
    """results.json after every evaluation: a run cut short (deadline, crash) still leaves its history."""
    results = {'config': config, 'model_args': asdict(gptconf), 'tokenizer': meta['tokenizer'], 'units': units(meta),
               'code': code, 'data': data_identity,
               'n_params': raw_model.num_params(), 'completed': (iter_num >= max_iters or patience_spent()) and test is not None,
               'stopped_early': patience_spent(),
               'iter': iter_num, 'max_iters': max_iters, 'history': history, 'best': best, 'test': test,
               'eval_stride': eval_stride or block_size, 'device': device,
               'device_name': machine,
               'world_size': world_size, 'dtype': dtype, 'torch': torch.__version__, 'wall_time_s': elapsed}
    written(os.path.join(out_dir, 'results.json'), lambda f: f.write(json.dumps(results, indent=2).encode()))


def written(path, write):
    """write_atomic, or the run stops in one line (a full disk): every file keeps its last complete version."""
    try:
        write_atomic(path, write)
    except OSError as e:
        if not os.path.exists(os.path.join(out_dir, 'last.pt')):  # nothing to resume from yet
            sys.exit(f"train.py: error: {e}. No checkpoint was written yet: free some space, then run the same command again")
        sys.exit(f"train.py: error: {e}. Free some space, then go on: python train.py --out_dir={out_dir} "
                 "--init_from=resume")


def save_checkpoints(best_saved):
    """last.pt (the whole state, to resume from) and, unless already written, ckpt.pt: the best weights,
    with the whole state when they are the current ones. Returns True: the best is now on disk."""
    states = [rng_states(device_type)]
    if ddp:
        gathered = [None] * world_size
        dist.all_gather_object(gathered, states[0])
        states = gathered
    if master:
        checkpoint(os.path.join(out_dir, 'last.pt'), states)
        if not best_saved:
            current = best['iter'] == iter_num
            checkpoint(os.path.join(out_dir, 'ckpt.pt'), states, None if current else best_weights)
    return True


def stop_if_not_finite(value, what, since):
    if not math.isfinite(value):
        if master:
            print(f"train.py: error: {what} is {value} at iteration {iter_num} (finite at iteration {since}): "
                  f"stopping. {out_dir}/last.pt and ckpt.pt hold the last good state; try a lower learning_rate.",
                  file=sys.stderr)
        leave_ddp()  # every rank is here: the value is their mean
        sys.exit(1)


def patience_spent():
    """Early stopping: `patience` evaluations have passed since the one with the best validation loss."""
    return bool(patience) and best is not None and sum(e['iter'] > best['iter'] for e in history) >= patience


if wandb_log and master:  # one wandb run per training run, resumed with it; the seeds of an arm grouped
    import wandb
    run_name = wandb_run_name or os.path.basename(os.path.abspath(out_dir))
    wandb_args = dict(project=wandb_project, name=run_name, group=wandb_group or arm_name(run_name), id=wandb_id,
                      tags=[units(meta)[:64], f'warmup {warmup_iters}', f'lr {learning_rate:g}', f'{epochs} epochs', dtype],
                      resume='allow', config=config, dir=out_dir)
    try:
        wandb.init(**wandb_args)
    except Exception as e:  # no network, no account: a night's run is worth more than its dashboard
        print(f"wandb: cannot start the online run ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}); logging offline "
              f"to {out_dir}/wandb instead, for `wandb sync` later", file=sys.stderr)
        wandb.teardown()  # the failed run still holds its id in wandb's service
        wandb.init(**wandb_args, mode='offline')

class Throughput:
    """Training time by windows of iterations, evaluation left out: lap(it) closes the window begun at
    the last lap or restart and gives its seconds per iteration; since_eval() the mean over the laps
    since its previous call."""

    def __init__(self, it):
        self.seconds, self.iters = 0.0, 0
        self.restart(it)

    def restart(self, it):  # time from now on: after the first iteration (compile, warm-up) and after evaluation
        self.t0, self.it0 = time.time(), it

    def lap(self, it):
        dt, n = time.time() - self.t0, it - self.it0
        self.seconds, self.iters = self.seconds + dt, self.iters + n
        self.restart(it)
        return dt / n

    def since_eval(self):
        s_per_iter = self.seconds / self.iters
        self.seconds, self.iters = 0.0, 0
        return s_per_iter


def mean_over_ranks(value):
    """The mean of a number over the DDP processes (the number itself without DDP)."""
    if not ddp:
        return value
    t = torch.tensor(value, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    return t.item()


train_loss_sum, train_loss_n = torch.zeros((), device=device), 0
speed, first_iter, last_good, run_t0 = Throughput(iter_num), iter_num, iter_num, time.time()
while iter_num < max_iters and not patience_spent():
    lr = get_lr(iter_num)
    for group in optimizer.param_groups:
        group['lr'] = lr
    for micro in range(gradient_accumulation_steps):
        x, y = get_batch(iter_num, micro)
        if ddp:  # all-reduce the gradients only on the last micro-step
            train_model.require_backward_grad_sync = micro == gradient_accumulation_steps - 1
        with ctx:
            _, loss = train_model(x, y)
            loss = loss / gradient_accumulation_steps
        scaler.scale(loss).backward()
        train_loss_sum += loss.detach()
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(raw_model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    iter_num += 1
    train_loss_n += 1
    stopping = bool(deadline) and time.time() > deadline  # out of time: evaluate what there is, then stop
    evaluating = iter_num % eval_every == 0 or iter_num == max_iters or stopping
    logging = iter_num % log_interval == 0 or evaluating
    if iter_num == first_iter + 1 and not logging:  # compile and warm-up: timed on its own, out of tokens/s
        loss.item()
        if master:
            print(f"first iteration (compile and warm-up): {time.time() - speed.t0:.1f} s")
        speed.restart(iter_num)
    if logging:
        lossf = mean_over_ranks(loss.item() * gradient_accumulation_steps)  # .item() waits for the GPU
        stop_if_not_finite(lossf, 'the training loss', last_good)
        last_good, s_per_iter = iter_num, speed.lap(iter_num)
        tok_s = tokens_per_iter / s_per_iter
        mfu = estimate_mfu(gptconf, block_size, tok_s / world_size, device, dtype)
        if master:
            print(f"iter {iter_num}/{max_iters} | epoch {iter_num / iters_per_epoch:.2f} | loss {lossf:.4f} | "
                  f"lr {lr:.2e} | {tok_s:,.0f} tok/s | mfu {f'{mfu:.1%}' if mfu is not None else 'n/a'} | "
                  f"{s_per_iter * 1000:.1f} ms/iter | left ~{fmt_time((max_iters - iter_num) * s_per_iter)}")
            if wandb_log:
                wandb.log({'iter': iter_num, 'train/loss': lossf, 'lr': lr, 'tokens_per_s': tok_s, 'mfu': mfu}, step=iter_num)

    if evaluating:
        val = evaluate_split(model, 'val')
        val_loss = val['loss']
        stop_if_not_finite(val_loss, 'the validation loss', last_good)
        train_loss = mean_over_ranks(train_loss_sum.item() / train_loss_n)
        elapsed, run_t0 = elapsed + time.time() - run_t0, time.time()  # wall time, evaluation included
        entry = {'iter': iter_num, 'epoch': iter_num / iters_per_epoch, 'train_loss': train_loss, 'val_loss': val_loss,
                 'val_ppl': math.exp(val_loss), 'val_recall_loss': val['recall_loss'], 'val_other_loss': val['other_loss'],
                 'lr': lr, 'tokens_per_s': tokens_per_iter / speed.since_eval(), 'elapsed_s': elapsed}
        history.append(entry)
        if best is None or val_loss < best['val_loss']:  # never overwrite the best with a worse value
            best = {'epoch': entry['epoch'], 'iter': iter_num, **{f'val_{k}': v for k, v in val.items()}}
            best_weights, best_saved = {k: v.detach().clone() for k, v in raw_model.state_dict().items()}, False
        if master:
            print(f"eval iter {iter_num} | epoch {entry['epoch']:.2f} | train loss {train_loss:.4f} | val loss {val_loss:.4f} "
                  f"| val ppl {entry['val_ppl']:.2f} | best val ppl {best['val_ppl']:.2f} (iter {best['iter']}) "
                  f"| {entry['tokens_per_s']:,.0f} tok/s | elapsed {fmt_time(elapsed)}")
            if wandb_log:
                wandb.log({'train/epoch_loss': train_loss, 'val/loss': val_loss, 'val/ppl': entry['val_ppl'],
                           'epoch': entry['epoch']}, step=iter_num)
        if checkpoint_every and len(history) % checkpoint_every == 0:
            best_saved = save_checkpoints(best_saved)
        if master:  # after the checkpoints: results.json never reports more than a resume would find
            write_results()
        train_loss_sum.zero_()
        train_loss_n = 0
        speed.restart(iter_num)
    if stopping:
        if master:
            print(f"deadline reached at iteration {iter_num} of {max_iters}: stopping, the run is incomplete")
        break

# the end: the last and best checkpoints, the best weights on the test split, and everything in results.json
if not best_saved or not (checkpoint_every and history and len(history) % checkpoint_every == 0):  # not yet written
    save_checkpoints(best_saved)
if ddp:  # every rank must end with the same weights; print a fingerprint of them
    import hashlib
    final_sha = hashlib.sha1(b''.join(p.detach().cpu().numpy().tobytes() for p in raw_model.parameters())).hexdigest()
    sys.stdout.write(f"rank {rank}: final weights sha1 {final_sha}\n")  # one write: ranks share the pipe
    sys.stdout.flush()
raw_model.load_state_dict(best_weights)
test = evaluate_split(model, 'test')
if master:
    write_results(test)
    print(f"best val ppl {best['val_ppl']:.2f} (epoch {best['epoch']:.2f}, iter {best['iter']}) | "
          f"{describe('test', test)} | wall {fmt_time(elapsed)} | {out_dir}/results.json"
          + ('' if iter_num >= max_iters else f" (stopped early at iteration {iter_num} of {max_iters}: {patience} "
             f"evaluations without a better validation loss)" if patience_spent() else
             f" (incomplete: {iter_num} of {max_iters} iterations)"))
    if wandb_log:
        wandb.summary.update({'best_val_ppl': best['val_ppl'], 'test_ppl': test['ppl'], 'test_bpb': test['bpb']})
        wandb.finish()
leave_ddp()
