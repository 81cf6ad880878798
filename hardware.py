"""
What a run needs to know about the machine it runs on, shared by train.py and bench.py: which device
and dtype a run gets here, what the device is called, and how the CPU allocator should treat the large
blocks a language model frees.

Usage:
    python hardware.py                         # the device and dtype train.py picks here ('auto')
    python hardware.py --expect cpu/bfloat16   # the same, exit status 1 if they are not these
    python hardware.py --dtype float32 --expect cpu/float32   # a run that sets its dtype: any CPU passes
    python hardware.py --slug                  # the device's name as a folder name
    python hardware.py --same-cpu results/stage6/runs/attention_post-seed42/results.json   # exit 1 on another CPU model
    from hardware import auto_dtype, pick, device_name, keep_freed_memory, release_memory
    dtype = auto_dtype('cpu')   # 'bfloat16' where the CPU has fast bf16, else 'float32'
"""
import ctypes
import gc
import re
import sys

import torch


def cpu_info():
    """The text of /proc/cpuinfo ('' where there is none: not Linux)."""
    try:
        with open('/proc/cpuinfo') as f:
            return f.read()
    except OSError:
        return ''


def cpu_has_fast_bf16():
    """AVX-512 BF16 or AMX: without them, bf16 matmuls fall back to a naive kernel far slower than float32."""
    flags = cpu_info()
    return 'avx512_bf16' in flags or 'amx_bf16' in flags


def cpu_has_amx():
    """AMX tiles for bf16: oneDNN's bf16 matmuls then take other kernels than AVX-512 BF16's, with other
    roundings (stage 4's first bf16 run repeated to 205.94 on one, against 205.67 without)."""
    return 'amx_bf16' in cpu_info()


def auto_dtype(device_type):
    """The autocast dtype that pays on this device: bf16 (or fp16 where a GPU lacks bf16), float32 on
    a CPU without fast bf16 and on anything else."""
    if device_type == 'cuda':
        return 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
    return 'bfloat16' if device_type == 'cpu' and cpu_has_fast_bf16() else 'float32'


def pick(device='auto', dtype='auto'):
    """The device and dtype a run gets from these settings: 'auto' is the best device there is, and the
    dtype that is fast on it."""
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
    return device, auto_dtype(device_type_of(device)) if dtype == 'auto' else dtype


def device_type_of(device):
    return 'cuda' if device.startswith('cuda') else device.split(':')[0]


def device_name(device):
    """What the device is: the GPU's name, or the CPU's model and whether it has fast bf16, and AMX (the
    same code gives other numbers in bf16 with and without each: a table keeps to one kind of machine)."""
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(device)
    if device != 'cpu':
        return device
    model = next((line.split(':', 1)[1].strip() for line in cpu_info().splitlines() if line.startswith('model name')),
                 'unknown CPU')
    return f"{model}, {('fast bf16 (AMX)' if cpu_has_amx() else 'fast bf16') if cpu_has_fast_bf16() else 'no fast bf16'}"


def machine_slug(device):
    """device_name as a folder name: 'Intel(R) Xeon(R) Processor, fast bf16 (AMX)' -> intel-r-xeon-r-processor-fast-bf16-amx."""
    return re.sub(r'[^a-z0-9]+', '-', device_name(device).lower()).strip('-')


def cpu_model(name):
    """The CPU's model in a device_name, without what follows it ('AMD EPYC, no fast bf16' -> 'AMD EPYC'):
    one model's runs in float32 take the same kernels, whatever the label said of bf16 when they ran."""
    return name.split(',')[0].strip()


def _libc():
    try:
        return ctypes.CDLL('libc.so.6')
    except OSError:
        return None  # not glibc: nothing to tune


def keep_freed_memory():
    """For CPU runs: glibc returns every freed block over 32 MB to the kernel, which zeroes it again page
    by page at the next allocation. With a 50k-entry vocabulary the logits are such blocks, and on a CPU
    that costs more time than the model itself; serve them from the heap, and keep the heap. A process
    that keeps changing shapes then grows: release_memory() hands the heap back."""
    libc = _libc()
    if libc:
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, -1)  # -1: never trim


def release_memory(device):
    """Hand what was freed back to the system: the CUDA cache, or the heap keep_freed_memory keeps."""
    gc.collect()
    if str(device).startswith('cuda'):
        torch.cuda.empty_cache()
    elif _libc():
        _libc().malloc_trim(0)


if __name__ == '__main__':
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--expect', metavar='DEVICE/DTYPE', help="e.g. cpu/bfloat16: exit 1 unless train.py's 'auto' picks these here")
    ap.add_argument('--dtype', default='auto', help="the run's dtype setting (default 'auto'), e.g. float32: any CPU then gives cpu/float32")
    ap.add_argument('--slug', action='store_true', help="print only the device's name as a folder name (make stage6's check)")
    ap.add_argument('--same-cpu', metavar='RESULTS_JSON', help="exit 1 unless this CPU is the model the run of RESULTS_JSON "
                                                               "trained on (make stage6-machine)")
    args = ap.parse_args()
    device, dtype = pick('auto', args.dtype)
    if args.slug:
        sys.exit(print(machine_slug(device)))
    if args.same_cpu:
        import json
        try:
            with open(args.same_cpu) as f:
                theirs = json.load(f)['device_name']
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"hardware.py: error: cannot read the device_name of {args.same_cpu} ({type(e).__name__}: {e})")
        ours = device_name(device)
        same = cpu_model(ours) == cpu_model(theirs)
        print(f"this CPU, {cpu_model(ours)}, is {'the' if same else 'not the'} model {args.same_cpu} ran on ({cpu_model(theirs)})")
        sys.exit(0 if same else 1)
    print(f"train.py here: device {device} ({device_name(device)}), dtype {dtype}")
    if args.expect and args.expect != f"{device}/{dtype}":
        sys.exit(f"hardware.py: error: expected {args.expect}, but a run here gets {device}/{dtype}: run on a machine that "
                 "gives it (bf16 on a CPU needs AVX-512 BF16 or AMX: grep -o avx512_bf16 /proc/cpuinfo), or expect what "
                 "this machine gives for a table of its own (with its own baselines)")
