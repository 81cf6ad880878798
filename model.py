"""
The two language models compared by this project, in one file:
1) the attention-free Causal Grassmann model of arXiv 2512.19428 ("Attention Is Not What You Need:
   Grassmann Flows as an Attention-Free Alternative for Sequence Modeling"),
2) a size-matched causal Transformer on the same skeleton.
The `mixer` flag picks one, the `norm` flag picks the paper's post-norm flow or a pre-norm variant.
Every equation and every decision the paper leaves open is written down in GRASSMANN.md (shared/).

Usage:
    from model import GPT, GPTConfig
    model = GPT(GPTConfig(mixer='grassmann', vocab_size=30522))
    logits, loss = model(idx, targets)
"""
import inspect
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

# bf16 dense peak FLOP/s of the chips we know, by name; an unknown chip gets no MFU rather than a wrong one
PEAK_FLOPS = {'H100 PCIe': 756e12, 'H100': 989e12, 'H200': 989e12, 'A100': 312e12, 'L4': 121e12, 'A10': 125e12}

# -----------------------------------------------------------------------------

@dataclass
class GPTConfig:
    block_size: int = 128  # the longest sequence, with pos_emb; without, only the length trained on
    vocab_size: int = 50304  # GPT-2's 50257 padded up to a multiple of 64
    n_layer: int = 6
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.1
    bias: bool = True  # biases in Linears and LayerNorms, as the paper's parameter counts need
    mixer: str = 'grassmann'  # 'grassmann' | 'attention'
    norm: str = 'post'  # 'post' (the paper's flow) | 'pre'
    reduced_dim: int = 32  # r: the Grassmann mixer works on Gr(2, r)
    lags: tuple = (1, 2, 4, 8, 12, 16)  # offsets Δ: position t is paired with t - Δ
    lag_schedule: str = 'all'  # 'all': every layer every lag | 'layer': layer l gets lags[l % len]
    plucker_eps: float = 1e-6  # floor on the Plücker norm
    pos_emb: bool = True  # a learned position table (the paper's); without it the lags alone carry order

    def __post_init__(self):
        self.lags = tuple(self.lags)  # configs and checkpoints may hand us a list
        choices = dict(mixer=('grassmann', 'attention'), norm=('post', 'pre'), lag_schedule=('all', 'layer'))
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"GPTConfig.{field}={getattr(self, field)!r}: allowed values are {allowed}")
        if not self.lags or any(not isinstance(l, int) or l < 1 for l in self.lags):
            raise ValueError(f"GPTConfig.lags={self.lags!r}: allowed values are a non-empty tuple of integers >= 1")
        if self.n_head < 1 or self.n_embd % self.n_head != 0:
            raise ValueError(f"GPTConfig.n_embd={self.n_embd} must be divisible by n_head={self.n_head} (n_head >= 1)")
        if self.reduced_dim < 2:
            raise ValueError(f"GPTConfig.reduced_dim={self.reduced_dim}: allowed values are integers >= 2 (a plane needs 2 dimensions)")
        for field in ('block_size', 'vocab_size', 'n_layer', 'n_embd'):
            if getattr(self, field) < 1:
                raise ValueError(f"GPTConfig.{field}={getattr(self, field)}: allowed values are integers >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout={self.dropout}: allowed values are 0 <= dropout < 1")

    def layer_lags(self, layer):
        """The lags that layer `layer` pairs positions with."""
        return self.lags if self.lag_schedule == 'all' else (self.lags[layer % len(self.lags)],)


def plucker(a, b):
    """Plücker coordinates of span(a, b): p_ij = a_i b_j - a_j b_i for i < j, (..., r) -> (..., r(r-1)/2)."""
    i, j = torch.triu_indices(a.size(-1), a.size(-1), 1, device=a.device)
    return a[..., i] * b[..., j] - a[..., j] * b[..., i]


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # fused q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x, cache=None):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        # no dropout on the attention weights: as for the Grassmann mixer, the block drops the mixer's output
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # decoding: these T positions follow the n whose keys and values the cache keeps
            k, v = self.extend_cache(cache, k, v)  # (B, nh, n + T, hs)
            n = k.size(2) - T
            mask = None if T == 1 else torch.ones(T, n + T, dtype=torch.bool, device=x.device).tril(diagonal=n)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)

    @staticmethod
    def extend_cache(cache, k, v):
        """Append k, v (B, nh, T, hs) to the cache's; its buffer doubles when full, so appending is O(T)."""
        n, T = cache.get('n', 0), k.size(2)
        kv = cache.get('kv')
        if kv is None or n + T > kv.size(3):
            grown = k.new_empty(2, *k.shape[:2], max(2 * (n + T), 64), k.size(3))  # (2, B, nh, capacity, hs)
            if kv is not None:
                grown[:, :, :, :n] = kv[:, :, :, :n]
            cache['kv'] = kv = grown
        kv[0, :, :, n:n + T], kv[1, :, :, n:n + T] = k, v
        cache['n'] = n + T
        return kv[0, :, :, :n + T], kv[1, :, :, :n + T]


class GrassmannMixer(nn.Module):
    """h_mix_t = α_t ⊙ h_t + (1 - α_t) ⊙ g_t, where g_t reads the planes span(z_t, z_{t-Δ}) in Gr(2, r)."""

    def __init__(self, config, lags):
        super().__init__()
        r = config.reduced_dim
        self.lags, self.eps = tuple(lags), config.plucker_eps
        self.reduce = nn.Linear(config.n_embd, r, bias=config.bias)  # step 1: W_red
        self.project = nn.Linear(r * (r - 1) // 2, config.n_embd, bias=config.bias)  # step 6: W_plü
        self.gate = nn.Linear(2 * config.n_embd, config.n_embd, bias=config.bias)  # step 7: W_gate

    def forward(self, h, reference=False, cache=None):
        # the Plücker steps run in float32: in bf16 the norms of near-parallel pairs would be noise
        z = self.reduce(h).float()  # (B, T, r)
        if reference:
            g = self.project(self.plucker_mean_reference(z).to(h.dtype))  # (B, T, d)
        elif cache is None:
            g = self.project_wedge(z, self.lag_mean(F.pad(z, (0, 0, max(self.lags), 0))))  # (B, T, d)
        else:  # decoding: all that earlier positions leave is the ring of their last max(lags) z
            n, keep = cache.get('n', 0), max(self.lags)
            past = cache.get('z', z.new_zeros(z.size(0), keep, z.size(2)))  # (B, keep, r), zeros before position 0
            z_all = torch.cat([past, z], dim=1)  # (B, keep + T, r)
            g = self.project_wedge(z, self.lag_mean(z_all, n))
            cache['z'], cache['n'] = z_all[:, -keep:], n + z.size(1)
        alpha = torch.sigmoid(self.gate(torch.cat([h, g.to(h.dtype)], dim=-1)))
        return alpha * h + (1 - alpha) * g

    def lag_mean(self, z_all, start=0):
        """Steps 2-5 without a Plücker vector per lag. The wedge is bilinear and z_t ∧ z_t = 0, so the
        mean of the normalised wedges z_t ∧ z_{t-Δ} is z_t ∧ w_t, w_t = mean_Δ b_Δ / ‖z_t ∧ z_{t-Δ}‖,
        with b_Δ the part of z_{t-Δ} orthogonal to z_t; and ‖z_t ∧ z_{t-Δ}‖ = ‖z_t‖ ‖b_Δ‖ (Lagrange's
        identity, in the form that does not cancel: a near-parallel pair stays a small, exact b_Δ).
        z_all (B, keep + T, r): the max(lags) = keep positions before `start` (zeros before position 0),
        then the T positions start .. start+T-1 whose w is returned."""
        keep = max(self.lags)
        T = z_all.size(1) - keep
        z_all = z_all.transpose(0, 1).contiguous()  # (keep + T, B, r): time outermost, each lag a contiguous slice
        z = z_all[keep:]  # (T, B, r)
        zz = (z * z).sum(-1, keepdim=True)  # (T, B, 1) ‖z_t‖²
        w = torch.zeros_like(z)
        count = torch.zeros(T, 1, 1, device=z.device)
        pos = torch.arange(start, start + T, device=z.device).view(T, 1, 1)  # positions of z
        for lag in self.lags:
            z_lag = z_all[keep - lag:keep - lag + T]  # (T, B, r) z_{t-Δ}, zero before position 0
            b = z_lag - (z * z_lag).sum(-1, keepdim=True) / zz.clamp_min(1e-30) * z  # (T, B, r)
            # clamping the square at eps² is max(‖p‖, eps) and keeps sqrt's gradient finite
            w = w + b / (zz * (b * b).sum(-1, keepdim=True)).clamp_min(self.eps ** 2).sqrt()
            count = count + (pos >= lag)
        return (w / count.clamp_min(1)).transpose(0, 1)  # (B, T, r); no valid lag (t = 0): w = 0, so p̄ = 0

    def plucker_mean(self, z):
        """p̄_t of step 5, computed as the single wedge z_t ∧ w_t."""
        return plucker(z, self.lag_mean(F.pad(z, (0, 0, max(self.lags), 0))))

    def project_wedge(self, z, w):
        """Step 6, W_plü (z ∧ w) + b_plü. For many tokens, without the Plücker vector: with A the
        antisymmetric (d, r, r) form of W_plü, W_plü (z ∧ w) = Σ_ij A_ij z_i w_j, one matmul over the
        outer product z ⊗ w (r² = 1024 inputs instead of 496, but no gather and no scatter in the
        backward pass). For a few tokens (decoding), building A would cost more than it saves."""
        W, r = self.project.weight, z.size(-1)  # (d, C(r,2))
        if z.shape[:-1].numel() <= r * r:
            return self.project(plucker(z, w).to(self.reduce.weight.dtype))
        i, j = torch.triu_indices(r, r, 1, device=W.device)
        A = W.new_zeros(W.size(0), r, r)
        A[:, i, j] = W
        A = A - A.transpose(1, 2)  # (d, r, r)
        outer = (z.unsqueeze(-1) * w.unsqueeze(-2)).flatten(-2)  # (B, T, r²)
        return F.linear(outer.to(self.reduce.weight.dtype), A.view(W.size(0), r * r), self.project.bias)

    def plucker_mean_reference(self, z):
        """Steps 2-5 as the spec writes them: a normalised Plücker vector per lag, then their mean."""
        B, T, r = z.shape
        total, count = 0, torch.zeros(T, 1, device=z.device)
        for lag in self.lags:
            if lag >= T:
                continue
            p = plucker(z[:, lag:], z[:, :-lag])  # (B, T-Δ, C(r,2)) for t = Δ .. T-1
            p = p / p.norm(dim=-1, keepdim=True).clamp_min(self.eps)
            total = total + F.pad(p, (0, 0, lag, 0))
            count[lag:] += 1
        return total / count.clamp_min(1) if torch.is_tensor(total) else z.new_zeros(B, T, r * (r - 1) // 2)


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):

    def __init__(self, config, layer):
        super().__init__()
        self.norm, self.grassmann = config.norm, config.mixer == 'grassmann'
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mixer = GrassmannMixer(config, config.layer_lags(layer)) if self.grassmann else CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, cache=None):
        if self.norm == 'pre':
            x = x + self.drop(self.mixer(self.ln_1(x), cache=cache))
            return x + self.drop(self.mlp(self.ln_2(x)))
        if self.grassmann:
            # the paper's flow: no identity residual around the mixer, only the gate's α ⊙ h carries x
            x = self.drop(self.ln_1(self.mixer(x, cache=cache)))
        else:
            x = self.ln_1(x + self.drop(self.mixer(x, cache=cache)))
        return self.ln_2(x + self.drop(self.mlp(x)))


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            **({'wpe': nn.Embedding(config.block_size, config.n_embd)} if config.pos_emb else {}),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, l) for l in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied: the paper's counts only add up this way
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)

    def num_params(self):
        """All parameters, position table included, the tied embedding counted once (as the paper counts)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, targets=None, cache=None):
        """Logits and loss of idx (B, T). With `cache` (from new_cache()), idx continues the tokens the
        cache has seen: only the new positions are computed, the cache is updated, and logits come for
        every new position. Without targets or cache, logits come for the last position only."""
        B, T = idx.size()
        start = cache['pos'] if cache else 0
        if self.config.pos_emb and start + T > self.config.block_size:
            raise ValueError(f"sequence of length {start + T} is longer than block_size={self.config.block_size}: "
                             f"crop the input to the last {self.config.block_size} tokens (or use pos_emb=False)")
        x = self.transformer.wte(idx)  # (B, T, d)
        if self.config.pos_emb:
            x = x + self.transformer.wpe(torch.arange(start, start + T, dtype=torch.long, device=idx.device))
        x = self.transformer.drop(x)
        for l, block in enumerate(self.transformer.h):
            x = block(x, cache['layers'][l] if cache else None)
        if cache:
            cache['pos'] += T
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x if cache else x[:, [-1], :]), None
        logits = self.lm_head(x)  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def new_cache(self):
        """Decoding state: attention keeps every key and value (a KV cache); a Grassmann layer keeps only
        the reduced vectors of the last max(lags) positions, the same size at any length."""
        return {'pos': 0, 'layers': [{} for _ in self.transformer.h]}

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # weight decay on 2-D tensors (matmul weights, embeddings), none on biases and LayerNorms
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {'params': [p for p in params if p.dim() >= 2], 'weight_decay': weight_decay},
            {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0},
        ]
        fused = device_type == 'cuda' and 'fused' in inspect.signature(torch.optim.AdamW).parameters
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **({'fused': True} if fused else {}))

    def flops_per_token(self, seq_len):
        """Training FLOPs (forward + backward = 3x forward) per token at sequence length `seq_len`:
        every matmul of this architecture (2 FLOPs per multiply-add), plus the Grassmann mixer's own
        elementwise Plücker terms. Attention scores count the full T x T matrix, as is customary; W_plü
        counts its C(r,2) inputs, though project_wedge feeds it r² (model FLOPs, not hardware FLOPs)."""
        cfg, d = self.config, self.config.n_embd
        r = cfg.reduced_dim
        per_layer = 2 * 2 * d * 4 * d  # MLP
        if cfg.mixer == 'attention':
            per_layer += 2 * d * 3 * d + 2 * d * d + 2 * 2 * seq_len * d  # qkv, proj, q·k and att·v
        else:
            pairs = r * (r - 1) // 2
            per_layer += 2 * d * r + 2 * pairs * d + 2 * 2 * d * d  # reduce, project, gate
            per_layer += 3 * pairs + 4 * r * len(cfg.lags)  # wedge z_t ∧ w_t; per lag a dot and an axpy
        return 3 * (cfg.n_layer * per_layer + 2 * d * cfg.vocab_size)  # + the LM head

    def estimate_mfu(self, seq_len, tokens_per_s, device, dtype):
        """Model FLOPs utilisation of one device processing tokens_per_s, or None where the peak is unknown."""
        if not str(device).startswith('cuda') or dtype not in ('bfloat16', 'float16'):
            return None
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
        return self.flops_per_token(seq_len) * tokens_per_s / peak if peak else None

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, incremental=True, on_token=None):
        """Sample max_new_tokens after idx (B, T), calling on_token(idx_next) for each. Incremental
        decoding runs the prompt once and then one position per token (see new_cache). With learned
        positions (pos_emb) the context slides once it exceeds block_size, as in nanoGPT: the last
        block_size tokens are then recomputed at every step, since every position shifts. Without
        them there is no limit and no recomputation."""
        window = self.config.block_size if self.config.pos_emb else None
        cache = None
        for _ in range(max_new_tokens):
            if incremental and cache is not None and (window is None or cache['pos'] < window):
                logits, _ = self(idx[:, -1:], cache=cache)  # only the newest token
            else:  # the start, a full window, or no incremental decoding: the whole (last window of the) context
                cache = self.new_cache() if incremental else None
                logits, _ = self(idx[:, -window:] if window else idx, cache=cache)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float('inf')
            idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
            if on_token:
                on_token(idx_next)
        return idx

def keep_freed_memory():
    """For CPU runs: glibc returns every freed block over 32 MB to the kernel, which zeroes it again page
    by page at the next allocation. With a 50k-entry vocabulary the logits are such blocks, and on a CPU
    that costs more time than the model itself; serve them from the heap, and keep the heap."""
    import ctypes
    try:
        libc = ctypes.CDLL('libc.so.6')
    except OSError:
        return  # not glibc: nothing to tune
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, -1)  # -1: never trim
