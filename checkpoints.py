"""
Checkpoints as data, not code: what train.py saves is only what torch.load(weights_only=True) reads
(tensors, numbers, strings, lists, tuples, dicts), random-number states included, and every checkpoint
is loaded that way, so that a ckpt.pt from someone else cannot run anything. A checkpoint written
before this rule (its numpy and Python RNG states were pickled objects) loads only with an explicit
opt-in, trust=True (--trust_checkpoint=True), for files whose origin you know.

A write that fails (a full disk, a file-size limit) leaves the previous file as it was and no
temporary file behind, and says in one line which file and why; a run folder is held by one run at a
time (lock_out_dir: an OS lock, gone with the process however it ends).

Usage:
    from checkpoints import load_checkpoint, lock_out_dir, rng_states, set_rng_states, write_atomic
    lock = lock_out_dir('out')                           # or a ValueError naming the run that holds it
    write_atomic('out/last.pt', lambda f: torch.save({'model': model.state_dict(), 'rng': rng_states('cpu')}, f))
    ckpt = load_checkpoint('out/last.pt', ('model',))   # or a ValueError that says what is wrong
"""
import errno
import os
import pickle
import random
import zipfile

import numpy as np
import torch


class _KeepsWriteErrors:
    """A file whose failed write is remembered: torch.save reports one as a RuntimeError without its errno."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data):
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self):
        self.f.flush()


def write_atomic(path, write):
    """write(f) into a temporary file, then renamed to `path`: a reader never sees half a file. If a
    write fails, the temporary file is removed, `path` keeps what it held, and an OSError says in one
    line which file, in which folder, and why (no space left on device, a file-size limit)."""
    tmp, f = path + '.tmp', None
    try:
        with open(tmp, 'wb') as raw:
            f = _KeepsWriteErrors(raw)
            write(f)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        cause = f.error if f is not None and f.error is not None else e
        try:
            os.remove(tmp)
        except OSError:
            pass
        if not isinstance(cause, OSError):
            raise
        full = ' (the disk is full, or a limit on file size or quota was reached)' if cause.errno in \
            (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else ''
        name, kept = os.path.basename(path), 'is as it was' if os.path.exists(path) else 'was never written'
        raise OSError(cause.errno, f"cannot write {name} in {os.path.dirname(path) or '.'}: "
                      f"{os.strerror(cause.errno) if cause.errno else cause}{full}; the previous {name} {kept}") from None


def lock_out_dir(out_dir):
    """Hold out_dir for this process (an flock on out_dir/train.lock, released by the OS when the process
    ends, even by kill -9), or a ValueError naming the folder and the pid of the run that holds it. The
    returned file must stay open as long as the run writes there."""
    import fcntl
    f = open(os.path.join(out_dir, 'train.lock'), 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        f.seek(0)
        holder = f.read().strip() or 'unknown'
        f.close()
        raise ValueError(f"{out_dir} is in use by another run (pid {holder}): wait for it to end, or give this run "
                         "another --out_dir") from None
    f.seek(0)
    f.truncate()
    f.write(f'{os.getpid()}\n')
    f.flush()
    return f


def load_checkpoint(path, keys=('model', 'model_args'), trust=False):
    """What train.py saved at `path` (on the CPU), or a ValueError that names the file and what is wrong
    with it: missing, damaged (truncated, overwritten, bytes flipped), holding Python objects (refused
    unless trust), or lacking one of `keys`."""
    if not os.path.isfile(path):
        raise ValueError(f"{path} not found")
    # torch.save writes a zip: anything else (empty, cut short, text) is broken, and so is a member whose bytes
    # fail their CRC-32 (flipped bytes, which torch.load itself reads without a word)
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
        bad = bad and f"{bad} fails its checksum"
    except Exception:  # not a zip, or one whose directory is past reading
        bad = 'not a complete torch.save file'
    if bad:
        raise ValueError(f"{path} is damaged or is not a checkpoint written by train.py ({bad}); delete it, or train again")
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=not trust)
    except pickle.UnpicklingError as e:
        if 'Weights only load failed' not in str(e):
            raise ValueError(f"{path} is damaged or is not a checkpoint written by train.py ({str(e)[:200]})") from None
        raise ValueError(f"{path} holds Python objects, not only tensors and numbers, so it was not loaded (loading "
                         "would run whatever code it carries): a checkpoint of train.py before 2026-12-06 does; if you "
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
