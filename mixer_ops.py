"""
The Grassmann mixer's lean training path: autograd Functions whose hand-written backward passes keep
only what cannot be cheaply recomputed (z, w, h as the matmuls read it, g, α), and the helpers they
share with model.py. Every Function's gradient is tested against autograd's on the same forward
(test_model.py); the equations are GRASSMANN.md's, the shapes those of GrassmannMixer.

Besides them, each option's mechanics as a function GrassmannMixer.forward calls by the spec's step: the
lag mean (steps 2-5), the partners' summaries, the convolution of z (stage 6), the unit vectors and the
RMS norm of the other normalisations. Their plain references are the spec's loops in test_model.py
(spec_mixer) and model.reference_pairs.

Usage:
    from mixer_ops import LagMean, WedgeProject, GateMix   # model.py's GrassmannMixer calls them
"""
import torch
from torch.nn import functional as F

# -----------------------------------------------------------------------------

def autocast_of(x):
    """The autocast dtype in force for x's device, or None: a backward pass runs outside autocast,
    so the Functions below note it in forward and cast their backward matmuls the same way."""
    return torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else None


def matmul_input(x):
    """x as autocast hands it to a matmul. Cast once and shared, it is kept once for every backward
    pass that reads it; autocast would make and keep one copy per matmul."""
    cast = autocast_of(x)
    return x.to(cast) if cast is not None and x.dtype == torch.float32 else x


UNIT_EPS = RMS_EPS = 1e-6  # the floors of ẑ = z / max(‖z‖, ε) and of the RMS norm (GRASSMANN.md, "Other normalisations")


def lag_mean(z_all, lags, first_valid, start=0, a=None, m=None, decay=None, eps=None):
    """Steps 2-5 without a Plücker vector per lag. The wedge is bilinear and z_t ∧ z_t = 0, so the
    mean of the normalised wedges z_t ∧ z_{t-Δ} is z_t ∧ w_t, w_t = mean_Δ b_Δ / ‖z_t ∧ z_{t-Δ}‖,
    with b_Δ the part of z_{t-Δ} orthogonal to z_t; and ‖z_t ∧ z_{t-Δ}‖ = ‖z_t‖ ‖b_Δ‖ (Lagrange's
    identity, in the form that does not cancel). Without step 4 (eps None: unnormalised, unit and
    linear pairs) w_t = mean_Δ z_{t-Δ}. z_all (B, keep + T, H, r): the keep = max(lags) positions before
    `start` (zeros before 0), then the T positions whose w (B, T, H, r) is returned; first_valid: the
    first position of each lag's plane, then each partner's; a (B, T, L) weights the mean. Partners m
    (B, T, K, H, r) are K more terms, valid from position 1; or their decays' logits `decay` (LagMean)."""
    T = z_all.size(1) - max(lags)
    pos = torch.arange(start, start + T, device=z_all.device)
    valid = (pos >= torch.tensor(first_valid, device=z_all.device).view(-1, 1)).to(z_all.dtype)  # (L [+ K], T)
    if a is None:  # the mean over the valid lags; none valid (t = 0): w = 0, so p̄ = 0
        weights = (valid / valid.sum(0).clamp_min(1))[..., None, None, None]  # (L, T, 1, 1, 1)
    else:
        weights = a.permute(2, 1, 0)[..., None, None]  # (L, T, B, 1, 1)
    # time outermost, so that each lag is a slice
    m = None if m is None else m.permute(2, 1, 0, 3, 4).contiguous()  # (K, T, B, H, r)
    if eps is None:  # no normalisation, so nothing to keep but z: autograd's own backward
        return (weights * paired_vectors(z_all.transpose(0, 1), lags, m)[1]).sum(0).transpose(0, 1)
    w = LagMean.apply(z_all.transpose(0, 1).contiguous(), weights, lags, eps ** 2, m, decay)
    return w.transpose(0, 1)  # (B, T, H, r)


def partner_summaries(z, logits, cache=None):
    """The partners m_t^k = γ_t^k m_{t-1}^k + (1 - γ_t^k) z_{t-1} of z (B, T, H, r), m_0 = 0, γ = σ(logits)
    (1 or B, 1 or T, K): (B, T, K, H, r). With a cache, z continues the positions it has seen: z_{t-1} of
    the first new position is the ring's last (read before the ring moves on), m_{t-1} the cache's 'm'."""
    B, T, H, r = z.shape
    prev = z.new_zeros(B, 1, H, r) if cache is None or 'z' not in cache else cache['z'][:, -1:]
    u = torch.cat([prev, z[:, :-1]], dim=1).view(B, T, H * r)  # z_{t-1}, 0 before position 0
    m0 = cache.get('m') if cache is not None else None
    m = running_summaries(u, F.logsigmoid(logits), torch.sigmoid(-logits), m0).view(B, T, -1, H, r)
    if cache is not None:
        cache['m'] = m[:, -1].reshape(B, -1, H * r)
    return m


def causal_conv(z, taps, bias, cache=None):
    """z̃_t = Σ_j c_j ⊙ z_{t-j} + b_c for z (B, T, H, r), taps c (K, H·r), c_0 first, z_{t-j} = 0 before
    position 0 (stage 6), as K shifted products (no conv1d), in z's dtype (float32 at least). With a
    cache, z continues the positions it has seen, whose last K - 1 vectors z it keeps ('z_conv')."""
    B, T, H, r = z.shape
    K = taps.size(0)
    past = cache.get('z_conv') if cache is not None else None
    z_all = torch.cat([z.new_zeros(B, K - 1, H, r) if past is None else past, z], dim=1)  # (B, K - 1 + T, H, r)
    if cache is not None:
        cache['z_conv'] = z_all[:, T:]
    taps = taps.to(z.dtype).view(K, H, r)
    out = bias.to(z.dtype).view(H, r) + taps[0] * z
    for j in range(1, K):  # tap j reads z_{t-j}
        out = out + taps[j] * z_all[:, K - 1 - j:K - 1 - j + T]
    return out


def unit_vectors(x):
    """x / max(‖x‖₂, ε) over its last dimension ('unit' pairing: each subspace's z^k, and each partner,
    read as a unit vector before the wedge); a zero vector (before position 0) stays zero."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(UNIT_EPS)


def rms_norm(p, gain):
    """γ ⊙ p / sqrt(mean_i p_i² + ε) over each subspace's coordinates, p (..., H, C), γ (H·C) (p_norm = 'rms');
    a p of zeros (no valid lag) stays zero."""
    return gain.view(p.shape[-2:]) * p * torch.rsqrt(p.pow(2).mean(-1, keepdim=True) + RMS_EPS)


def lag_terms(z_all, lags, m=None):
    """The per-lag quantities of lag_mean, every lag at once. z_all (keep + T, B, H, r),
    time outermost, keep = max(lags); m (K, T, B, H, r), the running summaries (partners), paired with
    z_t after the lags. Returns z (T, B, H, r), z_{t-Δ} (then m) as y (L [+ K], T, B, H, r) and the
    intermediates: ‖z‖², z·y, b, ‖b‖², s = max(‖z‖²‖b‖², eps²) before the floor."""
    z, y = paired_vectors(z_all, lags, m)
    zz = (z * z).sum(-1, keepdim=True)  # (T, B, H, 1)
    zy = (z * y).sum(-1, keepdim=True)  # (L, T, B, H, 1)
    c = zy / zz.clamp_min(1e-30)
    b = y - c * z  # the part of z_{t-Δ} orthogonal to z_t
    bb = (b * b).sum(-1, keepdim=True)
    return z, y, zz, c, b, bb, zz * bb


def paired_vectors(z_all, lags, m=None):
    """z_t (T, B, H, r) of z_all (keep + T, B, H, r), and what each position is paired with: z_{t-Δ} for
    each lag (zero padding before position 0), then the partners m (K, T, B, H, r): (L [+ K], T, B, H, r)."""
    keep = max(lags)
    T = z_all.size(0) - keep
    idx = torch.arange(T, device=z_all.device) + keep - torch.tensor(lags, device=z_all.device).view(-1, 1)
    return z_all[keep:], z_all[idx] if m is None else torch.cat([z_all[idx], m])


class LagMean(torch.autograd.Function):
    """w_t of lag_mean, keeping only z (and the lag weights) for backward: autograd
    would keep several tensors of z's size per lag. Backward recomputes the lag terms and applies the
    chain rule to them by hand (the clamps pass gradient where their input is at or above the floor,
    as torch's do). Partners come either as the summaries m themselves (kept for backward), or as the
    logits of their decays, `decay` (1 or B, 1 or T, K): then m is computed here from z_{t-1} and
    recomputed in backward, which keeps nothing of m's size (K times z's) for it."""

    @staticmethod
    def forward(ctx, z_all, weights, lags, eps2, m=None, decay=None):
        # weights (L [+ K], T, B or 1, 1, 1): a_Δ, or 1/count at valid lags for the plain mean
        if decay is not None:
            m = summaries_of(z_all, lags, decay)
        z, y, zz, c, b, bb, n2 = lag_terms(z_all, lags, m)
        ctx.save_for_backward(z_all, weights, m if decay is None else None, decay)
        ctx.lags, ctx.eps2 = lags, eps2
        return (weights * (b / n2.clamp_min(eps2).sqrt())).sum(0)  # (T, B, H, r)

    @staticmethod
    def backward(ctx, grad_w):
        z_all, weights, m, decay = ctx.saved_tensors
        if decay is not None:
            m = summaries_of(z_all, ctx.lags, decay)
        z, y, zz, c, b, bb, n2 = lag_terms(z_all, ctx.lags, m)
        s = n2.clamp_min(ctx.eps2)
        root = s.sqrt()
        grad_weights = (grad_w * b / root).sum((-1, -2), keepdim=True) if ctx.needs_input_grad[1] else None
        g = weights * grad_w  # (L, T, B, H, r): d loss / d term
        grad_s = -(g * b).sum(-1, keepdim=True) / (2 * s * root) * (n2 >= ctx.eps2)
        grad_b = g / root + 2 * b * (grad_s * zz)  # through term = b / sqrt(s) and s = ‖z‖² ‖b‖²
        grad_c = -(grad_b * z).sum(-1, keepdim=True)  # b = y - c z
        grad_zy = grad_c / zz.clamp_min(1e-30)  # c = z·y / max(‖z‖², 1e-30)
        grad_zz = (grad_s * bb - grad_c * c / zz.clamp_min(1e-30) * (zz >= 1e-30)).sum(0)
        grad_z = 2 * z * grad_zz - (c * grad_b).sum(0) + (grad_zy * y).sum(0)
        grad_y = grad_b + grad_zy * z  # (L [+ K], T, B, H, r)
        keep, T, L = max(ctx.lags), z.size(0), len(ctx.lags)
        grad_all = F.pad(grad_z, (0, 0, 0, 0, 0, 0, keep, 0))
        for k, lag in enumerate(ctx.lags):  # y_k is z_all[keep - Δ_k : keep - Δ_k + T]
            grad_all[keep - lag:keep - lag + T] += grad_y[k]
        if decay is None:
            return grad_all, grad_weights, None, None, None if m is None else grad_y[L:], None
        grad_u, grad_decay = summaries_backward(z_all, ctx.lags, decay, m, grad_y[L:])
        grad_all[keep - 1:keep - 1 + T] += grad_u  # u_t = z_{t-1}
        return grad_all, grad_weights, None, None, None, grad_decay


def summaries_of(z_all, lags, decay):
    """The partners m (K, T, B, H, r) of the T positions of z_all (keep + T, B, H, r), as lag_terms
    reads them: m_t = γ_t m_{t-1} + (1 - γ_t) z_{t-1}, m_0 = 0, γ = σ(decay), decay (1 or B, 1 or T, K)."""
    keep = max(lags)
    T, B, H, r = z_all[keep:].shape
    u = z_all[keep - 1:keep - 1 + T].transpose(0, 1).reshape(B, T, H * r)  # z_{t-1}: zero padding before 0
    m = running_summaries(u, F.logsigmoid(decay), torch.sigmoid(-decay))  # (B, T, K, H·r)
    return m.permute(2, 1, 0, 3).reshape(-1, T, B, H, r)


def summaries_backward(z_all, lags, decay, m, grad_m):
    """The chain rule through summaries_of, by hand. The adjoint of m_t = γ_t m_{t-1} + (1 - γ_t) u_t
    is the same recurrence run backwards, λ_t = ∂L/∂m_t + γ_{t+1} λ_{t+1}; then ∂L/∂u_t = Σ_k (1 - γ_t) λ_t,
    ∂L/∂γ_t = λ_t · (m_{t-1} - u_t) and ∂γ/∂decay = γ (1 - γ). m, grad_m (K, T, B, H, r). Returns the
    gradients of u = z_{t-1} (T, B, H, r) and of decay (its shape)."""
    keep = max(lags)
    K, T, B, H, r = m.shape
    lg = F.logsigmoid(decay).expand(decay.size(0), T, K)  # (Bd, T, K)
    next_lg = F.pad(lg[:, 1:], (0, 0, 0, 1))  # log γ_{t+1}; nothing comes after the last position
    g = grad_m.permute(2, 1, 0, 3, 4).reshape(B, T, K, H * r).flip(1)
    lam = running_summaries(g, next_lg.flip(1), torch.ones_like(next_lg)).flip(1)  # (B, T, K, H·r)
    gamma, one_minus = torch.sigmoid(decay).expand_as(lg), torch.sigmoid(-decay).expand_as(lg)
    grad_u = (one_minus.unsqueeze(-1) * lam).sum(2)  # (B, T, H·r)
    u = z_all[keep - 1:keep - 1 + T].transpose(0, 1).reshape(B, T, 1, H * r)
    prev = F.pad(m.permute(2, 1, 0, 3, 4).reshape(B, T, K, H * r)[:, :-1], (0, 0, 0, 0, 1, 0))  # m_{t-1}, 0 before 0
    grad_gamma = (lam * (prev - u)).sum(-1)  # (B, T, K)
    grad_decay = grad_gamma * gamma * one_minus
    if decay.size(0) == 1:
        grad_decay = grad_decay.sum(0, keepdim=True)
    if decay.size(1) == 1:
        grad_decay = grad_decay.sum(1, keepdim=True)
    return grad_u.view(B, T, H, r).transpose(0, 1), grad_decay


class WedgeProject(torch.autograd.Function):
    """W_plü (z ∧ w) + b_plü through the antisymmetric form A of W_plü (GrassmannMixer.project_pairs),
    keeping z and w for backward (2r numbers per subspace and position) instead of their outer
    product (r² of them), which backward rebuilds."""

    @staticmethod
    def forward(ctx, z, w, weight, bias):
        ctx.save_for_backward(z, w, weight)
        ctx.has_bias, ctx.cast = bias is not None, autocast_of(z)
        return F.linear(outer_product(z, w).to(weight.dtype), antisymmetric(weight, *z.shape[-2:]), bias)

    @staticmethod
    def backward(ctx, grad_g):
        z, w, weight = ctx.saved_tensors
        H, r = z.shape[-2:]
        A, outer = antisymmetric(weight, H, r), outer_product(z, w).to(weight.dtype)
        if ctx.cast is not None:  # as the forward's autocast matmul did
            A, outer, grad_g = A.to(ctx.cast), outer.to(ctx.cast), grad_g.to(ctx.cast)
        grad_outer = (grad_g @ A).to(z.dtype).view(*z.shape, r)  # (B, T, H, r, r)
        grad_z = (grad_outer * w.unsqueeze(-2)).sum(-1)
        grad_w = (grad_outer * z.unsqueeze(-1)).sum(-2)
        grad_A = (grad_g.flatten(0, -2).T @ outer.flatten(0, -2)).to(weight.dtype).view(-1, H, r, r)
        i, j = torch.triu_indices(r, r, 1, device=z.device)
        grad_weight = (grad_A - grad_A.transpose(-1, -2))[:, :, i, j].reshape(weight.shape)
        grad_bias = grad_g.flatten(0, -2).sum(0).to(weight.dtype) if ctx.has_bias else None
        return grad_z, grad_w, grad_weight, grad_bias


def outer_product(z, w):
    """z^k ⊗ w^k for each subspace k: (..., H, r) x 2 -> (..., H·r²)."""
    return (z.unsqueeze(-1) * w.unsqueeze(-2)).flatten(-3)


def antisymmetric(weight, H, r):
    """W_plü (d, H·C(r,2)) as the (d, H·r²) matrix A with A (z ⊗ w) = W_plü (z ∧ w): A_kij = W_k,ij
    above the diagonal, -W_k,ji below it."""
    i, j = torch.triu_indices(r, r, 1, device=weight.device)
    A = weight.new_zeros(weight.size(0), H, r, r)
    A[:, :, i, j] = weight.view(weight.size(0), H, -1)
    return (A - A.transpose(-1, -2)).view(weight.size(0), H * r * r)


class GateMix(torch.autograd.Function):
    """Steps 7-8, y = α ⊙ h + (1 - α) ⊙ g with α = σ(W_gate [h; g] + b_gate), keeping h as the gate's
    matmul read it (hc: the autocast copy, or h itself in float32), g and α. Autograd would keep
    [h; g] for the matmul and h and g again for the products. In float32 every gradient is autograd's;
    under autocast the gradient of α reads h in the autocast dtype, as the gate's own does."""

    @staticmethod
    def forward(ctx, h, hc, g, weight, bias):
        alpha = torch.sigmoid(F.linear(torch.cat([hc, g.to(hc.dtype)], dim=-1), weight, bias))
        ctx.save_for_backward(hc, g, alpha, weight)
        ctx.has_bias, ctx.cast, ctx.h_dtype = bias is not None, autocast_of(h), h.dtype
        return alpha * h + (1 - alpha) * g

    @staticmethod
    def backward(ctx, grad_y):
        hc, g, alpha, weight = ctx.saved_tensors
        grad_h = grad_y * alpha
        grad_g = (grad_y * (1 - alpha)).to(g.dtype)
        grad_alpha = (grad_y * hc - grad_y * g).to(alpha.dtype)
        grad_pre = grad_alpha * alpha * (1 - alpha)  # σ' = σ (1 - σ)
        W, x = weight, torch.cat([hc, g.to(hc.dtype)], dim=-1)
        if ctx.cast is not None:
            W, x, grad_pre = W.to(ctx.cast), x.to(ctx.cast), grad_pre.to(ctx.cast)
        grad_x = grad_pre @ W
        d = hc.size(-1)
        grad_h = grad_h + grad_x[..., :d].to(ctx.h_dtype)
        grad_g = grad_g + grad_x[..., d:].to(g.dtype)
        grad_weight = (grad_pre.flatten(0, -2).T @ x.flatten(0, -2)).to(weight.dtype)
        grad_bias = grad_pre.flatten(0, -2).sum(0).to(weight.dtype) if ctx.has_bias else None
        return grad_h, None, grad_g, grad_weight, grad_bias


def running_summaries(u, log_gamma, one_minus, m0=None, chunk=64):
    """The partners' recurrence m_t = γ_t m_{t-1} + (1 - γ_t) u_t for t = 0 .. T-1, m_{-1} = m0 (zeros
    if None), in chunks: inside a chunk of C positions one matmul with the decay matrix
    D_ij = exp(log γ_{j+1} + .. + log γ_i) (1 - γ_j), j ≤ i; across chunks the same with each chunk's
    whole decay. Exact at any length, with a cost per token that does not grow with it (C per token
    inside, T / C across). u (B, T, N), here z_{t-1}, or (B, T, K, N), one per summary; log_gamma,
    one_minus (B or 1, T or 1, K), log γ and 1 - γ computed apart, so that neither is rounded through
    the other; m0 (B, K, N).
    Returns (B, T, K, N). With decays shared by the batch (the ema) D is the batch's, kept once."""
    B, T, N = u.shape[0], u.shape[1], u.shape[-1]
    K, C = log_gamma.size(-1), min(chunk, T)
    n = -(-T // C)
    lg, om = (x.expand(x.size(0), T, K) for x in (log_gamma, one_minus))
    if n * C > T:  # past the end: no input, no decay; causal, so the positions before are unchanged
        pad = n * C - T
        u = F.pad(u, (0, 0, 0, pad) if u.dim() == 3 else (0, 0, 0, 0, 0, pad))
        lg, om = F.pad(lg, (0, 0, 0, pad)), F.pad(om, (0, 0, 0, pad))
    Bd = lg.size(0)
    L = lg.reshape(Bd, n, C, K).transpose(-1, -2).cumsum(-1)  # (Bd, n, K, C): log γ summed inside each chunk
    causal = torch.ones(C, C, dtype=torch.bool, device=u.device).tril()
    D = (L.unsqueeze(-1) - L.unsqueeze(-2)).masked_fill(~causal, float('-inf')).exp()  # (Bd, n, K, C, C)
    D = D * om.reshape(Bd, n, C, K).transpose(-1, -2).unsqueeze(-2)  # column j times 1 - γ_j
    u = u.view(B, n, 1, C, N) if u.dim() == 3 else u.view(B, n, C, K, N).transpose(2, 3)
    m = D @ u  # (B, n, K, C, N): each chunk from its own inputs
    if n > 1 or m0 is not None:  # the state entering each chunk, decayed through it
        total = L[..., -1]  # (Bd, n, K)
        G = total.cumsum(1)
        before = G - total  # the decay summed over the chunks before each one
        ends = m[..., -1, :]  # (B, n, K, N)
        across = (before.unsqueeze(2) - G.unsqueeze(1)).permute(0, 3, 1, 2)  # (Bd, K, n, n): [c, c'] = before_c - G_c'
        across = across.masked_fill(~torch.ones(n, n, dtype=torch.bool, device=u.device).tril(-1), float('-inf')).exp()
        enter = (across @ ends.transpose(1, 2)).transpose(1, 2)  # (B, n, K, N)
        if m0 is not None:
            enter = enter + before.exp().unsqueeze(-1) * m0.unsqueeze(1)
        m = m + L.exp().unsqueeze(-1) * enter.unsqueeze(-2)
    return m.permute(0, 1, 3, 2, 4).reshape(B, n * C, K, N)[:, :T]
