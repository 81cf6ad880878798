"""
Sample continuations from a trained model (out_dir/ckpt.pt), decoded with the checkpoint's tokenizer.

Usage:
    python sample.py --out_dir=out-grassmann-wt2
    python sample.py --out_dir=out-attention-wt2 --start="The history of" --num_samples=3 --top_k=50
    python sample.py --out_dir=out-grassmann-wt2 --start=FILE:prompt.txt --max_new_tokens=200
    python sample.py --out_dir=out-grassmann-wt2 --num_samples=1 --stream=True   # print tokens as they come
    python sample.py --out_dir=out-grassmann-wt2 --temperature=0                 # greedy: the likeliest token

    python sample.py --out_dir=out-grassmann-wt2 --compile=True --dtype=bfloat16   # compiled decoding
    python sample.py --help                                                     # every key, with its default

Decoding is incremental (the prompt once, then one position per token: a KV cache for attention, the
last max(lags) reduced vectors for Grassmann); --incremental=False recomputes the context every token.
--compile=True compiles the model's forward (dynamic shapes: one graph for the prompt, two for the
decoding steps of a Grassmann model, one per cache size of attention), as bench.py --generate --compile
measures it; the model then runs in `dtype` itself rather than under autocast (a compiled graph under
autocast casts every weight at every token). Prints tokens/s after each sample.
"""
import os
import sys
import time
from contextlib import nullcontext

import torch

from configurator import configure
from checkpoints import load_checkpoint
from model import GPT, GPTConfig
from prepare import get_tokenizer

# -----------------------------------------------------------------------------
out_dir = 'out'
start = ''  # a string, or FILE:path; '': a new line (GPT-2 BPE), or '=' with WordPiece, which has no newline token
num_samples = 3
max_new_tokens = 200
temperature = 0.8  # < 1 sharpens, > 1 flattens the distribution; 0: always the likeliest token (greedy)
top_k = 200  # None: sample from the whole vocabulary
seed = 1337
device = 'auto'
dtype = 'float32'
incremental = True
stream = False  # print each token as it is sampled (with num_samples=1 reads best)
compile = False  # torch.compile the decoding (the first sample includes compiling)
compile_backend = 'inductor'  # torch.compile's backend ('aot_eager': traced, no C++ compiler needed)
trust_checkpoint = False  # load a checkpoint holding Python objects (train.py's before 2026-12-06): only one you know
# -----------------------------------------------------------------------------
config_keys = [k for k, v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str, tuple, type(None)))]
try:
    globals().update(configure({k: globals()[k] for k in config_keys}, sys.argv[1:], script=__file__))
    for key, low in (('num_samples', 1), ('max_new_tokens', 1), ('top_k', 1)):
        if globals()[key] is not None and not globals()[key] >= low:
            raise ValueError(f"{key}={globals()[key]!r}: allowed values are integers >= {low}" + (" or None (the whole "
                             "vocabulary)" if key == 'top_k' else ''))
    if not temperature >= 0:
        raise ValueError(f"temperature={temperature!r}: allowed values are numbers >= 0 (0: always the likeliest token)")
    if dtype not in ('float32', 'bfloat16', 'float16'):
        raise ValueError(f"dtype={dtype!r}: allowed values are float32, bfloat16, float16")
except ValueError as e:
    sys.exit(f"sample.py: error: {e}")

if device == 'auto':
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
path = os.path.join(out_dir, 'ckpt.pt')
if not os.path.isfile(path):
    sys.exit(f"sample.py: error: {path} not found: train a model first (python train.py config/...), "
             f"or point --out_dir at a run folder")
if start.startswith('FILE:'):
    try:
        with open(start[5:], encoding='utf-8') as f:
            start = f.read()
    except (OSError, UnicodeDecodeError) as e:
        sys.exit(f"sample.py: error: cannot read the prompt file ({e}): give --start=FILE:path of a UTF-8 text file")
    if not start:
        sys.exit("sample.py: error: the prompt file is empty: give --start=TEXT or --start=FILE:path with some text")

torch.manual_seed(seed)
try:
    ckpt = load_checkpoint(path, ('model', 'model_args', 'tokenizer'), trust_checkpoint)
    model = GPT(GPTConfig(**ckpt['model_args']))
    model.load_state_dict(ckpt['model'])
    encode, decode, _ = get_tokenizer(ckpt['tokenizer'], ckpt.get('tokenizer_vocab'), ckpt.get('tokenizer_unk'))
except ValueError as e:
    sys.exit(f"sample.py: error: {e}" if str(e).startswith(path) else f"sample.py: error: {path}: {e}")
model.eval().to(device)
if not start:  # WikiText-2's articles begin ' = Title = '; WordPiece drops newlines, so it starts there
    start = '=' if ckpt['tokenizer'] == 'bert-base-uncased' else '\n'

ids = encode(start)
if not ids:
    sys.exit(f"sample.py: error: the prompt {start!r} encodes to no tokens")
x = torch.tensor(ids, dtype=torch.long, device=device)[None, ...]
ctx = nullcontext() if dtype == 'float32' else torch.autocast(device_type=x.device.type, dtype=getattr(torch, dtype))
forward = None
if compile:
    if dtype != 'float32':
        model, ctx = model.to(getattr(torch, dtype)), nullcontext()
    torch._dynamo.config.recompile_limit = 64  # attention's cache grows in steps, each a graph
    forward = torch.compile(model, dynamic=True, backend=compile_backend)


def printer():
    """on_token callback: prints the text each new token adds (a token may end inside a character)."""
    state = {'ids': list(ids), 'shown': len(decode(ids))}

    def on_token(idx_next):
        state['ids'].append(idx_next[0].item())
        text = decode(state['ids'])
        print(text[state['shown']:], end='', flush=True)
        state['shown'] = len(text)
    print(decode(ids), end='', flush=True)
    return on_token


with torch.no_grad(), ctx:
    for _ in range(num_samples):
        t0 = time.perf_counter()
        y = model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k, incremental=incremental,
                           on_token=printer() if stream else None, forward=forward)
        dt = time.perf_counter() - t0
        print('' if stream else decode(y[0].tolist()))
        graphs = torch._dynamo.utils.counters['stats']['unique_graphs']  # what dynamo compiled so far
        print(f"--------------- {max_new_tokens} tokens in {dt:.2f} s: {max_new_tokens / dt:,.1f} tokens/s"
              + (f" (compiled, {graphs} graphs{', compiling included' if _ == 0 else ''})" if compile else ''), file=sys.stderr)
        print('---------------')
