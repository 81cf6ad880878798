"""
The Grassmann mixer's decoding step: one new position after those a cache has seen, the same steps as
GrassmannMixer.forward (GRASSMANN.md) in as few operations as they allow, since a decoding step at batch
1 is bound by the number of operations, not by their size:
- two matmuls instead of four: W_red, W_lag, W_γ and the gate's h columns stacked (all read h_t), and
  W_plü stacked with the gate's g columns times W_plü (the gate reads g = W_plü p + b_plü), built once
  per generation (decode_weights); their biases are added after the matmuls, in float32 at least;
- steps 2-5 on the ring of the last max(lags) reduced vectors, z_t itself read as a lag whose
  orthogonal part is 0;
- what depends on the position (the number of valid lags, the learned weights' floor) read from
  tables indexed by it (decode_tables), so that a compiled step is one graph for every position;
- the gate as lerp(g, h, α) = g + α (h - g).

Usage (GrassmannMixer.forward calls it for one position with a cache):
    y = decode_step(mixer, h, cache)   # h (B, 1, d); cache: the layer's dict, updated
"""
import torch
from torch.nn import functional as F

from mixer_ops import autocast_of, causal_conv, rms_norm, unit_vectors

# -----------------------------------------------------------------------------

def decode_step(mixer, h, cache):
    """The mixer's output (B, 1, d) for h (B, 1, d) at position cache['n'], updating the ring cache['z']
    (B, max(lags), H, r) and, with partners, their summaries cache['m'] (B, K, H·r)."""
    if 'decode' not in cache:
        cache['decode'] = decode_weights(mixer, h) + (decode_tables(mixer, h.device),)
    w_in, b_in, w_out, b_out, tables = cache['decode']
    B, H, keep, start, d = h.size(0), mixer.n_subspaces, max(mixer.lags), cache.get('n', 0), h.size(-1)
    K, r = mixer.n_partners, mixer.reduced_dim
    Hr, L = H * r, len(mixer.lags) + K if mixer.lag_logits is not None else 0
    S = K if mixer.decay is not None else 0
    pre = torch.add(F.linear(h, w_in), b_in)  # (B, 1, H·r + L + S + d): z, lag logits, decay logits, the gate's h part
    z = pre[..., :Hr].view(B, 1, H, -1)  # (B, 1, H, r), float32 at least
    if mixer.conv_taps is not None:  # z̃ (stage 6): the new z and the cache's last K - 1
        z = causal_conv(z, mixer.conv_taps, mixer.conv_bias, cache)
    z_all = torch.cat([cache['z'] if 'z' in cache else z.new_zeros(B, keep, H, z.size(-1)), z], dim=1)
    zy = z_all.index_select(1, tables['ring'])  # (B, 1 + L, H, r): z_t, then z_{t-Δ} (zeros before position 0)
    if K:  # m_t = γ_t m_{t-1} + (1 - γ_t) z_{t-1}, z_{t-1} the ring's last (zeros at position 0)
        logits = (mixer.decay_logits.view(1, -1) if S == 0 else pre[:, 0, Hr + L:Hr + L + S]).to(z.dtype)  # (1 or B, K)
        m = torch.sigmoid(logits)[..., None] * cache.get('m', z.new_zeros(B, K, Hr)) \
            + torch.sigmoid(-logits)[..., None] * z_all[:, keep - 1].reshape(B, 1, Hr)  # (B, K, H·r)
        cache['m'] = m
        zy = torch.cat([zy, m.view(B, K, H, r)], dim=1)  # (B, 1 + L' + K, H, r)
    if mixer.pairing == 'unit':  # the pairs read unit vectors; the ring and the summaries keep z itself
        z, zy = unit_vectors(z), unit_vectors(zy)
    if mixer.pairing == 'wedge':  # the normalised b_Δ of mixer_ops.lag_mean
        dots = (zy * z).sum(-1, keepdim=True)  # z_t·z_t, then z_t·z_{t-Δ}
        zz = dots[:, :1]
        b = torch.addcmul(zy, dots / zz.clamp_min(1e-30), z, value=-1)  # 0 for z_t and before position 0
        norm = torch.linalg.vector_norm(b, dim=-1, keepdim=True) * zz.sqrt()  # ‖z_t ∧ z_{t-Δ}‖
        terms = b / norm.clamp_min(mixer.eps)  # (B, 1 + L, H, r); a b of 0 stays 0
    else:  # unnormalised, unit and linear pairs: the vectors themselves, without z_t's own row
        terms = F.pad(zy[:, 1:], (0, 0, 0, 0, 1, 0))
    row = min(start, keep)  # the valid lags are those of position max(lags) from there on
    if L:  # learned weights: the softmax over the valid lags, as GrassmannMixer.lag_weights
        a = torch.softmax(pre[:, 0, Hr:Hr + L] + tables['floor'][row], dim=-1)  # (B, L + K)
        w = (terms[:, 1:] * a[..., None, None]).sum(1, keepdim=True)  # (B, 1, H, r)
    else:  # the plain mean over the k valid lags
        w = terms.sum(1, keepdim=True) / tables['count'][row]
    cache['z'], cache['n'] = z_all[:, 1:], start + 1
    if mixer.pairing == 'linear':
        p = torch.cat([z, w], dim=-1).view(B, 1, -1)  # (B, 1, H·2r): [z^k; w^k] side by side
    else:
        outer = z.unsqueeze(-1) * w.unsqueeze(-2)  # (B, 1, H, r, r)
        p = (outer - outer.mT).view(B, 1, -1).index_select(-1, tables['wedge'])  # (B, 1, H·C(r,2)): z ∧ w
        if mixer.p_gain is not None:  # p_norm = 'rms', before both matmuls that read p
            p = rms_norm(p.view(B, 1, H, -1), mixer.p_gain.to(p.dtype)).view(B, 1, -1)
    out = torch.add(F.linear(p.to(w_out.dtype), w_out), b_out)  # (B, 1, 2d): g, and the gate's g part
    alpha = torch.sigmoid(pre[..., Hr + L + S:] + out[..., d:])
    return torch.lerp(out[..., :d], h if h.dtype == out.dtype else h.to(out.dtype), alpha).to(h.dtype)


@torch.no_grad()
def decode_weights(mixer, h):
    """What decode_step multiplies by, built once per generation (decoding is inference): W_red, W_lag,
    W_γ and the gate's h columns stacked, since all read h_t; W_plü and the gate's g columns times W_plü
    stacked, since the gate reads g = W_plü p + b_plü. The weights in the autocast dtype where autocast
    is on, the biases (zeros without) in float32 at least."""
    d = mixer.gate.in_features // 2
    gate_h, gate_g = mixer.gate.weight[:, :d], mixer.gate.weight[:, d:]
    first = [m for m in (mixer.reduce, mixer.lag_logits, mixer.decay) if m is not None]
    w_in = torch.cat([m.weight for m in first] + [gate_h])
    w_out = torch.cat([mixer.project.weight, gate_g @ mixer.project.weight])
    if mixer.gate.bias is not None:
        b_in = torch.cat([m.bias for m in first] + [mixer.gate.bias])
        b_out = torch.cat([mixer.project.bias, gate_g @ mixer.project.bias])
    else:  # zeros, but for b_γ, which the selective partners have even without biases (it sets their init)
        b_in, b_out = w_in.new_zeros(w_in.size(0)), w_out.new_zeros(w_out.size(0))
        if mixer.decay is not None:
            b_in[-d - mixer.decay.out_features:-d] = mixer.decay.bias
    cast, dtype = autocast_of(h), torch.promote_types(h.dtype, torch.float32)
    w_in, w_out = (w if cast is None else w.to(cast) for w in (w_in, w_out))
    return w_in, b_in.to(dtype), w_out, b_out.to(dtype)


def decode_tables(mixer, device):
    """Where z_t and each lag's z lie in the ring; how many lags (and partners) are valid at positions
    0 .. max(lags) (all of them from max(lags) on), as floats (dividing by them is cheaper, and counts up
    to 256 are exact even in bf16), at least 1 (at position 0 no lag is valid: every term, so w, is 0);
    the learned weights' floor there; and the Plücker pairs (i < j) of each subspace in z ⊗ w."""
    keep, first = max(mixer.lags), torch.tensor(mixer.first_valid, device=device)
    H, r = mixer.n_subspaces, mixer.reduced_dim
    valid = torch.arange(keep + 1, device=device).view(-1, 1) >= first  # (keep + 1, L + K)
    i, j = torch.triu_indices(r, r, 1, device=device)
    return {'ring': keep - torch.cat([torch.zeros(1, dtype=torch.long, device=device), first[:len(mixer.lags)]]),
            'count': valid.sum(1).clamp_min(1).float(), 'floor': (~valid).float() * -1e30,
            'wedge': (torch.arange(H, device=device).view(-1, 1) * r * r + i * r + j).flatten()}
