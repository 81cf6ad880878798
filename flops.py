"""
What a model costs: its training FLOPs per token, counted from its GPTConfig (every matmul of the
architecture and the Grassmann mixer's elementwise Plücker terms), and the model FLOPs utilisation of
a measured speed, on a GPU whose bf16 peak we know (no MFU rather than a wrong one elsewhere).

Usage:
    from flops import estimate_mfu, flops_per_token
    flops_per_token(model.config, 128)                             # forward + backward, per token
    estimate_mfu(model.config, 128, 2.5e5, 'cuda', 'bfloat16')     # a fraction of the peak, or None
"""
import re

import torch

# bf16 dense peak FLOP/s of the chips we know, by model name (a whole word of the device name: 'L4' is
# not an L40S, 'A10' not an A10G); an unknown chip gets no MFU rather than a wrong one
PEAK_FLOPS = {'H100 PCIe': 756e12, 'H100': 989e12, 'H200': 989e12, 'A100': 312e12, 'L4': 121e12, 'A10': 125e12}


def flops_per_token(cfg, seq_len):
    """Training FLOPs (forward + backward = 3x forward) per token of a model of config `cfg` at sequence
    length `seq_len`: every matmul of the architecture (2 FLOPs per multiply-add), plus the Grassmann mixer's own
    elementwise Plücker terms. Attention scores count the full T x T matrix, as is customary; W_plü
    counts its C(r,2) inputs, though WedgeProject feeds it r² (model FLOPs, not hardware FLOPs)."""
    d, r, H = cfg.n_embd, cfg.reduced_dim, cfg.n_subspaces
    total = 2 * d * cfg.vocab_size  # the LM head
    for layer in range(cfg.n_layer):
        total += 2 * 2 * d * 4 * d  # MLP
        if cfg.mixer == 'attention' or layer in cfg.attn_layers:  # qkv, proj, q·k and att·v (over the window's keys only)
            keys = min(seq_len, cfg.attn_window + 1) if cfg.attn_window else seq_len
            total += 2 * d * 3 * d + 2 * d * d + 2 * 2 * keys * d
            continue
        K = cfg.n_partners if cfg.partners != 'none' else 0
        pairs, L = r * (r - 1) // 2, len(cfg.layer_lags(layer)) + K
        inputs = 2 * r if cfg.pairing == 'linear' else pairs  # what W_plü (W_lin) reads per subspace
        total += 2 * d * H * r + 2 * H * inputs * d + 2 * 2 * d * d  # reduce, project, gate
        # the wedge z_t ∧ w_t; per lag (and partner) a dot and an axpy, or without normalisation an axpy
        total += H * ((0 if cfg.pairing == 'linear' else 3 * pairs) + (4 if cfg.pairing == 'wedge' else 2) * r * L)
        total += 2 * d * L if cfg.lag_weights == 'learned' else 0  # the lag logits
        total += 2 * d * K if cfg.partners == 'selective' else 0  # the decay logits
        total += 2 * cfg.z_conv * H * r  # the convolution of z: a multiply-add per tap and channel
        total += 3 * H * r * (1 + K) if cfg.pairing == 'unit' else 0  # ẑ of z_t and of each partner: a dot, a division
        total += 4 * H * pairs if cfg.p_norm == 'rms' else 0  # the RMS norm of p̄: squares summed, a scale and a gain
        # the partners' recurrence as the chunked matmuls run it: C = min(64, T) inputs per summary, and
        # the chunks' states carried across (n of them, where there are several)
        C = min(64, seq_len)
        n = -(-seq_len // C)
        total += 2 * K * H * r * C + (2 * K * H * r * n * n / seq_len if n > 1 else 0)
    return 3 * total


def estimate_mfu(cfg, seq_len, tokens_per_s, device, dtype):
    """Model FLOPs utilisation of one device processing tokens_per_s, or None where the peak is unknown."""
    if not str(device).startswith('cuda') or dtype not in ('bfloat16', 'float16'):
        return None
    name = torch.cuda.get_device_name(device)
    peak = next((PEAK_FLOPS[k] for k in sorted(PEAK_FLOPS, key=len, reverse=True)  # 'H100 PCIe' before 'H100'
                 if re.search(rf'(?<![\w-]){re.escape(k)}(?![\w])', name)), None)
    return flops_per_token(cfg, seq_len) * tokens_per_s / peak if peak else None
