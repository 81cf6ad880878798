"""
Checkpoints as data, not code: what train.py saves is only what torch.load(weights_only=True) reads
(tensors, numbers, strings, lists, tuples, dicts), random-number states included, and every checkpoint
is loaded that way, so that a ckpt.pt from someone else cannot run anything. A checkpoint written
before this rule (its numpy and Python RNG states were pickled objects) loads only with an explicit
opt-in, trust=True (--trust_checkpoint=True), for files whose origin you know.

Usage:
    from checkpoints import load_checkpoint, rng_states, save_atomic, set_rng_states
    save_atomic({'model': model.state_dict(), 'rng': rng_states('cpu')}, 'out/last.pt')
    ckpt = load_checkpoint('out/last.pt', ('model',))   # or a ValueError that says what is wrong
"""
import os
import pickle
import random

import numpy as np
import torch


def save_atomic(obj, path):
    """torch.save to a temporary file, then renamed: a reader never sees half a checkpoint."""
    torch.save(obj, path + '.tmp')
    os.replace(path + '.tmp', path)


def load_checkpoint(path, keys=('model', 'model_args'), trust=False):
    """What train.py saved at `path` (on the CPU), or a ValueError that names the file and what is wrong
    with it: missing, damaged (truncated, overwritten), holding Python objects (refused unless trust),
    or lacking one of `keys`."""
    if not os.path.isfile(path):
        raise ValueError(f"{path} not found")
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=not trust)
    except pickle.UnpicklingError as e:
        if 'Weights only load failed' not in str(e):
            raise ValueError(f"{path} is damaged or is not a checkpoint written by train.py ({str(e)[:200]})") from None
        raise ValueError(f"{path} holds Python objects, not only tensors and numbers, so it was not loaded (loading "
                         "would run whatever code it carries): a checkpoint of train.py before issue 29 does; if you "
                         "know where this file comes from, load it once with --trust_checkpoint=True") from None
    except Exception as e:  # a truncated zip, a pickle of something else, an overwritten file: all say the same
        raise ValueError(f"{path} is damaged or is not a checkpoint written by train.py "
                         f"({type(e).__name__}: {str(e)[:200]}); delete it, or train again") from None
    missing = [k for k in keys if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(f"{path} is not a complete checkpoint of train.py: it lacks {', '.join(missing)}")
    return ckpt


def rng_states(device_type):
    """This process's random-number states as plain data: torch's (and CUDA's) as tensors, numpy's and
    Python's as lists."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    return {'torch': torch.get_rng_state(), 'cuda': torch.cuda.get_rng_state() if device_type == 'cuda' else None,
            'numpy': [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            'python': [version, list(internal), py_gauss]}


def set_rng_states(state, device_type):
    """Restore what rng_states saved (or, from a trusted older checkpoint, numpy's and Python's own tuples)."""
    torch.set_rng_state(state['torch'].cpu())
    if device_type == 'cuda' and state['cuda'] is not None:
        torch.cuda.set_rng_state(state['cuda'].cpu())
    name, keys, *rest = state['numpy']
    np.random.set_state((name, np.asarray(keys.numpy() if torch.is_tensor(keys) else keys, dtype=np.uint32), *rest))
    version, internal, py_gauss = state['python']
    random.setstate((version, tuple(internal), py_gauss))
