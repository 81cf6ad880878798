"""
The two language models compared by this project:
1) the attention-free Causal Grassmann model of arXiv 2512.19428 ("Attention Is Not What You Need:
   Grassmann Flows as an Attention-Free Alternative for Sequence Modeling"),
2) a size-matched causal Transformer on the same skeleton.
The `mixer` flag picks one, the `norm` flag picks the paper's post-norm flow or a pre-norm variant.
Every equation and every decision the paper leaves open is written down in GRASSMANN.md, beside this file;
the Grassmann mixer's hand-written backward passes are in mixer_ops.py.

Usage:
    from model import GPT, GPTConfig
    model = GPT(GPTConfig(mixer='grassmann', vocab_size=30522))
    logits, loss = model(idx, targets)
"""
import inspect
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

from mixer_decode import decode_step
from mixer_ops import (GateMix, WedgeProject, causal_conv, lag_mean, matmul_input, partner_summaries, rms_norm,
                       unit_vectors)

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
    n_subspaces: int = 1  # H: H reductions of h_t, each read on its own Gr(2, r) (study variant; 1 is the paper's)
    lag_weights: str = 'mean'  # 'mean' (the paper's) | 'learned': a softmax over the valid lags from h_t
    pos_emb: bool = True  # a learned position table (the paper's); without it the lags alone carry order
    init: str = 'normal'  # 'normal': N(0, 0.02) weights, zero biases | 'torch': PyTorch's defaults (the seed's recipe)
    partners: str = 'none'  # 'none' (the paper's) | 'ema' | 'selective': running summaries of the past, paired like lags
    n_partners: int = 3  # K summaries per layer (and subspace), decays initialised at τ = 4, 16, 64, ... (4^k)
    pairing: str = 'wedge'  # 'wedge' (the paper's) | 'unnormalised': z_t ∧ z_{t-Δ} as is | 'linear': [z_t; w̄_t], no pairing
    #                         | 'unit': ẑ_t ∧ ẑ_{t-Δ} of unit vectors, no step 4 (GRASSMANN.md, "Other normalisations")
    p_norm: str = 'none'  # 'rms': each subspace's p̄_t through an RMS norm with a learned gain, after step 5
    attn_window: int = 0  # attention reads the last attn_window positions and its own (0: the whole context)
    attn_layers: tuple = ()  # a hybrid (stage 6): these blocks of a Grassmann model use causal attention instead
    z_conv: int = 0  # K > 0: a causal depthwise convolution of width K on the reduced vectors z (stage 6)

    def __post_init__(self):
        for field in ('block_size', 'vocab_size', 'n_layer', 'n_head', 'n_embd', 'reduced_dim', 'n_subspaces', 'n_partners',
                      'attn_window', 'z_conv'):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"GPTConfig.{field}={value!r}: allowed values are integers")
        self.lags, self.attn_layers = tuple(self.lags), tuple(self.attn_layers)  # configs and checkpoints may hand us lists
        choices = dict(mixer=('grassmann', 'attention'), norm=('post', 'pre'), lag_schedule=('all', 'layer'),
                       lag_weights=('mean', 'learned'), init=('normal', 'torch'), partners=('none', 'ema', 'selective'),
                       pairing=('wedge', 'unnormalised', 'linear', 'unit'), p_norm=('none', 'rms'))
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"GPTConfig.{field}={getattr(self, field)!r}: allowed values are {allowed}")
        if not self.lags or any(not isinstance(l, int) or l < 1 for l in self.lags):
            raise ValueError(f"GPTConfig.lags={self.lags!r}: allowed values are a non-empty tuple of integers >= 1")
        if self.mixer == 'grassmann' and self.pos_emb and max(self.lags) >= self.block_size:  # positions end at block_size - 1
            raise ValueError(f"GPTConfig.lags={self.lags!r}: a lag of {max(self.lags)} is never valid in sequences of at most "
                             f"block_size={self.block_size} tokens: allowed lags are 1 to {self.block_size - 1}")
        if any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < self.n_layer for i in self.attn_layers):
            raise ValueError(f"GPTConfig.attn_layers={self.attn_layers!r}: allowed values are block indices 0 to {self.n_layer - 1}")
        if self.attn_layers and self.mixer != 'grassmann':
            raise ValueError(f"GPTConfig.attn_layers={self.attn_layers!r} makes a Grassmann model a hybrid; with "
                             f"mixer={self.mixer!r} every block is attention already: leave attn_layers empty")
        if self.z_conv < 0 or self.z_conv and self.mixer != 'grassmann':
            raise ValueError(f"GPTConfig.z_conv={self.z_conv}: allowed values are 0 (off) or a width >= 1, with the Grassmann "
                             "mixer (it convolves the reduced vectors)")
        if self.p_norm != 'none' and (self.mixer != 'grassmann' or self.pairing == 'linear'):
            raise ValueError(f"GPTConfig.p_norm={self.p_norm!r} normalises the Grassmann mixer's Plücker coordinates, which "
                             f"{'attention' if self.mixer != 'grassmann' else 'linear pairs'} has not: leave p_norm='none'")
        if self.attn_window < 0:
            raise ValueError(f"GPTConfig.attn_window={self.attn_window}: allowed values are 0 (the whole context) or a window >= 1")
        if self.n_head < 1 or self.n_embd % self.n_head != 0:
            raise ValueError(f"GPTConfig.n_embd={self.n_embd} must be divisible by n_head={self.n_head} (n_head >= 1)")
        if self.reduced_dim < 2:
            raise ValueError(f"GPTConfig.reduced_dim={self.reduced_dim}: allowed values are integers >= 2 (a plane needs 2 dimensions)")
        for field in ('block_size', 'vocab_size', 'n_layer', 'n_embd', 'n_subspaces', 'n_partners'):
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
        self.n_head, self.window = config.n_head, config.attn_window
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # fused q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x, cache=None):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        # no dropout on the attention weights: as for the Grassmann mixer, the block drops the mixer's output
        if cache is None and not self.window:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # a window, or decoding: these T positions follow the n whose keys and values the cache keeps
            if cache is not None:
                k, v = self.extend_cache(cache, k, v)  # (B, nh, n + T, hs)
            n = k.size(2) - T
            everything = T == 1 and (not self.window or n <= self.window)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if everything else visible(T, n, self.window, x.device))
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)

    def extend_cache(self, cache, k, v):
        """Append k, v (B, nh, T, hs) to the cache's and return both. With a window the cache then keeps the
        last W only, all that a later position reads; without, its buffer doubles when full (appending is O(T))."""
        n, T = cache.get('n', 0), k.size(2)
        kv = cache.get('kv')
        if self.window:
            if kv is not None:
                k, v = torch.cat([kv[0], k], dim=2), torch.cat([kv[1], v], dim=2)
            cache['kv'] = torch.stack([k, v])[:, :, :, -self.window:]  # (2, B, nh, <= W, hs)
            cache['n'] = cache['kv'].size(3)
            return k, v
        if kv is None or n + T > kv.size(3):
            grown = k.new_empty(2, *k.shape[:2], max(2 * (n + T), 64), k.size(3))  # (2, B, nh, capacity, hs)
            if kv is not None:
                grown[:, :, :, :n] = kv[:, :, :, :n]
            cache['kv'] = kv = grown
        kv[0, :, :, n:n + T], kv[1, :, :, n:n + T] = k, v
        cache['n'] = n + T
        return kv[0, :, :, :n + T], kv[1, :, :, :n + T]


def visible(T, n, window, device):
    """Which keys each of T queries reads (T, n + T), the queries following n earlier keys: query i (at
    n + i) reads keys n + i - W .. n + i with a window W, every key up to n + i without (window 0)."""
    i = torch.arange(n, n + T, device=device).view(-1, 1)
    j = torch.arange(n + T, device=device)
    return (j <= i) & (j >= i - window) if window else j <= i


def float32_at_least(x):
    """x in float32 where it came in bf16 or fp16: the Plücker steps, the lag weights and the decays run in
    float32 at least (in bf16 the norms of near-parallel pairs would be noise)."""
    return x.float() if x.element_size() < 4 else x


class GrassmannMixer(nn.Module):
    """h_mix_t = α_t ⊙ h_t + (1 - α_t) ⊙ g_t, where g_t reads the planes span(z_t, z_{t-Δ}) in Gr(2, r).
    forward() runs GRASSMANN.md's steps on mixer_ops' functions; reference=True runs them as the spec
    writes them (reference_pairs); one position after those of a cache runs mixer_decode.py."""

    def __init__(self, config, lags):
        super().__init__()
        r, H, d = config.reduced_dim, config.n_subspaces, config.n_embd
        self.lags, self.eps, self.n_subspaces, self.reduced_dim = tuple(lags), config.plucker_eps, H, r
        self.pairing = config.pairing  # 'wedge' (the paper's) | 'unnormalised' | 'linear' | 'unit' (stages 5, 6)
        features = 2 * r if self.pairing == 'linear' else r * (r - 1) // 2  # per subspace: [z_t; w̄_t], or C(r,2) coordinates
        self.reduce = nn.Linear(d, H * r, bias=config.bias)  # step 1: W_red, H vectors z_t^k of r numbers
        self.project = nn.Linear(H * features, d, bias=config.bias)  # step 6: W_plü (W_lin for linear pairs)
        self.gate = nn.Linear(2 * d, d, bias=config.bias)  # step 7: W_gate
        # partners (stage 4): K running summaries m_t^k of z_{<t}, each paired with z_t like a lag; decays
        # γ = σ(θ), learned per layer (ema) or chosen by h_t (selective), θ initialised at 1 / (1 - γ) = τ
        self.partners, K = config.partners, config.n_partners if config.partners != 'none' else 0
        self.n_partners = K
        self.decay_logits = nn.Parameter(torch.zeros(K)) if self.partners == 'ema' else None  # θ
        self.decay = nn.Linear(d, K) if self.partners == 'selective' else None  # W_γ, b_γ
        self.init_partners()
        # step 5 as a weighted mean: the weight of each lag (and partner) at t comes from h_t (study variant)
        self.lag_logits = nn.Linear(d, len(self.lags) + K, bias=config.bias) if config.lag_weights == 'learned' else None
        self.first_valid = self.lags + (1,) * K  # the first position of each lag's plane, then each partner's
        # stage 6: z̃_t = Σ_j c_j ⊙ z_{t-j} + b_c per channel, at init the identity (c_0 = 1), so the arm starts as
        # the model without it; c and b_c are gains, without weight decay (GPT.configure_optimizers)
        self.conv_taps = nn.Parameter(F.one_hot(torch.zeros(H * r, dtype=torch.long), config.z_conv).T.float()) \
            if config.z_conv else None  # c: (K, H·r), c_0 first
        self.conv_bias = nn.Parameter(torch.zeros(H * r)) if config.z_conv else None  # b_c
        # p_norm = 'rms': γ^k of each subspace's RMS norm of p̄_t, initialised to 1; a gain (one dimension: no weight decay)
        self.p_gain = nn.Parameter(torch.ones(H * features)) if config.p_norm == 'rms' else None

    @torch.no_grad()
    def init_partners(self):
        """θ_k such that 1 / (1 - σ(θ_k)) = τ_k = 4^k, as b_γ for the selective partners (after the
        model's init has set every bias: GPT calls this again)."""
        theta = torch.log(4.0 ** torch.arange(1, self.n_partners + 1, dtype=torch.float64) - 1)
        if self.decay_logits is not None:
            self.decay_logits.copy_(theta)
        if self.decay is not None:
            self.decay.bias.copy_(theta)

    def forward(self, h, reference=False, cache=None):
        B, T, _ = h.shape
        if cache is not None and T == 1 and not reference:
            return decode_step(self, h, cache)  # one position: mixer_decode.py
        hc = h if reference else matmul_input(h)  # (B, T, d), read by every matmul on h
        z = float32_at_least(self.reduce(hc)).view(B, T, self.n_subspaces, -1)  # step 1: (B, T, H, r)
        if self.conv_taps is not None:  # every later step reads z̃
            z = causal_conv(z, self.conv_taps, self.conv_bias, cache)
        start = cache.get('n', 0) if cache is not None else 0
        a = self.lag_weights(hc, start)  # step 5's weights (B, T, L [+ K]), or None for the plain mean
        # the partners: m (B, T, K, H, r); in training the wedge's LagMean computes them from their decays
        # instead, to recompute them in backward rather than keep them
        decay = self.decay_of(hc) if self.n_partners and cache is None and self.pairing == 'wedge' and not reference else None
        m = partner_summaries(z, self.decay_of(hc), cache) if self.n_partners and decay is None else None
        if reference:  # steps 2-6 as the spec writes them, then 7-8
            g = self.project(reference_pairs(self, z, a, m).to(h.dtype))  # (B, T, d)
            alpha = torch.sigmoid(self.gate(torch.cat([h, g.to(h.dtype)], dim=-1)))
            return alpha * h + (1 - alpha) * g
        keep = max(self.lags)
        past = cache.get('z') if cache is not None else None  # the ring of the last max(lags) z of a cache
        z_all = torch.cat([z.new_zeros(B, keep, *z.shape[2:]) if past is None else past, z], dim=1)  # zeros before 0
        if cache is not None:  # the ring keeps z itself: the partners summarise it
            cache['z'], cache['n'] = z_all[:, -keep:], start + T
        if self.pairing == 'unit':  # step 3 reads unit vectors, step 4 is skipped
            z, z_all, m = unit_vectors(z), unit_vectors(z_all), None if m is None else unit_vectors(m)
        w = self.lag_mean(z_all, start, a, m, decay)  # steps 2-5: p̄_t = z_t ∧ w_t, (B, T, H, r)
        g = self.project_pairs(z, w)  # step 6: (B, T, d)
        return GateMix.apply(h, hc, g, self.gate.weight, self.gate.bias)  # steps 7-8

    def lag_weights(self, h, start=0):
        """Learned lag weights a_t = softmax over the lags (and partners) valid at t of W_lag h_t + b_lag,
        (B, T, L [+ K]); lags reaching before position 0 get no weight, and position 0 none at all (so p̄_0 = 0)."""
        if self.lag_logits is None:
            return None
        pos = torch.arange(start, start + h.size(1), device=h.device).view(-1, 1)
        valid = pos >= torch.tensor(self.first_valid, device=h.device)  # (T, L [+ K])
        # a finite floor, not -inf: at t = 0 every lag is invalid, and softmax of all -inf is NaN
        a = torch.softmax(float32_at_least(self.lag_logits(h)).masked_fill(~valid, -1e30), dim=-1)
        return a * valid

    def lag_mean(self, z_all, start=0, a=None, m=None, decay=None):
        """w_t (B, T, H, r) of steps 2-5, p̄_t = z_t ∧ w_t (mixer_ops.lag_mean); step 4 for the wedge only."""
        return lag_mean(z_all, self.lags, self.first_valid, start, a, m, decay, self.eps if self.pairing == 'wedge' else None)

    def project_pairs(self, z, w):
        """Step 6 for z, w (B, T, H, r): W_plü [z^1 ∧ w^1; ...; z^H ∧ w^H] + b_plü, or, for linear pairs,
        W_lin [z^1; w^1; ...; z^H; w^H] + b_lin. For many tokens the wedge needs no Plücker vector: with
        A the antisymmetric (d, H, r, r) form of W_plü, W_plü (z ∧ w) = Σ_kij A_kij z_ki w_kj, one matmul
        over the outer products z^k ⊗ w^k (WedgeProject). For a few tokens, building A would cost more;
        the RMS norm (p_norm = 'rms') reads the Plücker vector itself."""
        dtype, r = self.reduce.weight.dtype, z.size(-1)
        if self.pairing == 'linear':
            return self.project(torch.cat([z, w], dim=-1).flatten(-2).to(dtype))
        if self.p_gain is not None:
            return self.project(rms_norm(plucker(z, w), self.p_gain).flatten(-2).to(dtype))
        if z.shape[:-2].numel() <= r * r:
            return self.project(plucker(z, w).flatten(-2).to(dtype))
        return WedgeProject.apply(z, w, self.project.weight, self.project.bias)

    def decay_of(self, hc):
        """The logits of the partners' decays, γ = σ(logits): θ (1, 1, K), or W_γ h_t + b_γ (B, T, K)."""
        return float32_at_least(self.decay_logits.view(1, 1, -1) if self.decay is None else self.decay(hc))


def plucker_mean(mixer, z):
    """p̄_t of step 5 for z (B, T, H, r) as the mixer computes it, the single wedge z_t ∧ w_t: (B, T, H·C(r,2)).
    The lags' planes only: partners need h (their decays), which the mixer's forward() has."""
    if mixer.n_partners or mixer.pairing == 'linear':
        raise ValueError("plucker_mean reads the lags' planes only; with partners or linear pairs call the mixer itself")
    z = unit_vectors(z) if mixer.pairing == 'unit' else z
    return plucker(z, mixer.lag_mean(F.pad(z, (0, 0, 0, 0, max(mixer.lags), 0)))).flatten(-2)


def reference_pairs(mixer, z, a=None, m=None):
    """Steps 2-5 as GRASSMANN.md writes them, one lag (or partner m, (B, T, K, H, r)) and subspace at a
    time: the normalised Plücker vector (unnormalised pairs: as it is; unit pairs: that of the two unit
    vectors; linear pairs: the other vector itself), then their mean (or their sum weighted by a),
    beside z_t for linear pairs; with p_norm = 'rms' each subspace's mean through its RMS norm; the
    subspaces concatenated: (B, T, H·features)."""
    B, T, H, r = z.shape
    linear = mixer.pairing == 'linear'
    if mixer.pairing == 'unit':  # ẑ = z / max(‖z‖, ε) = z / sqrt(max(‖z‖², ε²)), each subspace's vector (and partner)
        z = z / z.pow(2).sum(-1, keepdim=True).clamp_min(1e-12).sqrt()
        m = None if m is None else m / m.pow(2).sum(-1, keepdim=True).clamp_min(1e-12).sqrt()
    others = [(lag, z[:, :T - lag]) for lag in mixer.lags] + [(1, m[:, 1:, k]) for k in range(0 if m is None else m.size(2))]
    total = z.new_zeros(B, T, H, r if linear else r * (r - 1) // 2)
    count = torch.zeros(T, 1, 1, device=z.device)
    for k, (first, y) in enumerate(others):  # y: the other vector of the pairs at t = first .. T-1
        if first >= T:
            continue
        p = y if linear else plucker(z[:, first:], y)  # (B, T - first, H, features)
        if mixer.pairing == 'wedge':
            p = p / p.norm(dim=-1, keepdim=True).clamp_min(mixer.eps)
        p = F.pad(p, (0, 0, 0, 0, first, 0))
        total = total + (p if a is None else a[..., k, None, None] * p)
        count[first:] += 1
    mean = total / count.clamp_min(1) if a is None else total
    if mixer.p_gain is not None:  # p̄^k ← γ^k ⊙ p̄^k / sqrt(mean_i (p̄^k_i)² + ε)
        mean = mixer.p_gain.view(H, -1) * mean / (mean.pow(2).mean(-1, keepdim=True) + 1e-6).sqrt()
    return (torch.cat([z, mean], dim=-1) if linear else mean).flatten(-2)


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
        self.norm, self.grassmann = config.norm, config.mixer == 'grassmann' and layer not in config.attn_layers
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
        if config.init == 'normal':
            self.apply(self._init_weights)
            for m in self.modules():  # the partners' decays start at their τ, not at the zero bias
                if isinstance(m, GrassmannMixer):
                    m.init_partners()
        else:  # PyTorch's defaults, as the seed ran them: its head is tied to the N(0, 1) token table, so
            # the tied matrix is the embedding's (logits of std ~sqrt(d), an initial loss of ~150 nats)
            torch.nn.init.normal_(self.transformer.wte.weight, mean=0.0, std=1.0)

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
        the reduced vectors of the last max(lags) positions (and, with z_conv = K, the last K - 1 before
        the convolution), the same size at any length. A hybrid's attention blocks keep their KV cache."""
        return {'pos': 0, 'layers': [{} for _ in self.transformer.h]}

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, decay_on='matrices'):
        # weight decay on 2-D tensors (matmul weights, embeddings), none on biases and LayerNorms;
        # decay_on='all' decays every parameter, as the seed reproduction's AdamW(model.parameters()) does
        if decay_on not in ('matrices', 'all'):
            raise ValueError(f"weight_decay_on={decay_on!r}: allowed values are 'matrices' and 'all'")
        # (the convolution's taps, stage 6, are gains like LayerNorm's, though a matrix)
        params = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        decayed = (lambda n, p: True) if decay_on == 'all' else (lambda n, p: p.dim() >= 2 and not n.endswith('conv_taps'))
        groups = [
            {'params': [p for n, p in params if decayed(n, p)], 'weight_decay': weight_decay},
            {'params': [p for n, p in params if not decayed(n, p)], 'weight_decay': 0.0},
        ]
        fused = device_type == 'cuda' and 'fused' in inspect.signature(torch.optim.AdamW).parameters
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **({'fused': True} if fused else {}))

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, incremental=True, on_token=None, forward=None):
        """Sample max_new_tokens after idx (B, T) (temperature 0: the likeliest token each time), calling
        on_token(idx_next) for each. Incremental decoding runs the prompt once and then one position per
        token (see new_cache). With learned positions (pos_emb) the context slides once it exceeds
        block_size, as in nanoGPT: the last block_size tokens are then recomputed at every step, since
        every position shifts. Without them there is no limit and no recomputation. `forward`: this
        model compiled (torch.compile)."""
        window = self.config.block_size if self.config.pos_emb else None
        cache, forward = None, self if forward is None else forward
        for _ in range(max_new_tokens):
            if incremental and cache is not None and (window is None or cache['pos'] < window):
                logits, _ = forward(idx[:, -1:], cache=cache)  # only the newest token
            else:  # the start, a full window, or no incremental decoding: the whole (last window of the) context
                cache = self.new_cache() if incremental else None
                logits, _ = forward(idx[:, -window:] if window else idx, cache=cache)
            logits = logits[:, -1, :]
            if temperature == 0:  # greedy: the likeliest token, no sampling
                idx_next = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float('inf')
                idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
            if on_token:
                on_token(idx_next)
        return idx
