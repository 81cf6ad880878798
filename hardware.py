"""
What a run needs to know about the machine it runs on, shared by train.py and bench.py: which dtype
is fast here, and how the CPU allocator should treat the large blocks a language model frees.

Usage:
    from hardware import auto_dtype, keep_freed_memory, release_memory
    dtype = auto_dtype('cpu')   # 'bfloat16' where the CPU has fast bf16, else 'float32'
"""
import ctypes
import gc

import torch


def cpu_has_fast_bf16():
    """AVX-512 BF16 or AMX: without them, bf16 matmuls fall back to a naive kernel far slower than float32."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = f.read()
        return 'avx512_bf16' in flags or 'amx_bf16' in flags
    except OSError:
        return False


def auto_dtype(device_type):
    """The autocast dtype that pays on this device: bf16 (or fp16 where a GPU lacks bf16), float32 on
    a CPU without fast bf16 and on anything else."""
    if device_type == 'cuda':
        return 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
    return 'bfloat16' if device_type == 'cpu' and cpu_has_fast_bf16() else 'float32'


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
