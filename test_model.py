"""
The specification (GRASSMANN.md) in executable form: each test states one property of the two
models and fails if the model breaks it.

Usage: python -m pytest -q test_model.py
"""
import math

import pytest
import torch
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from bench import memory_mb
from flops import estimate_mfu, flops_per_token
from mixer_ops import GateMix, LagMean, WedgeProject, lag_terms, running_summaries, summaries_of
from model import GPT, CausalSelfAttention, GPTConfig, GrassmannMixer, plucker, plucker_mean, reference_pairs

PAPER_LAGS = (1, 2, 4, 8, 12, 16)
MIXERS, NORMS = ('attention', 'grassmann'), ('post', 'pre')
# the paper's mixer, then the study's variants: several subspaces, learned lag weights, both
VARIANTS = [dict(), dict(n_subspaces=3), dict(lag_weights='learned'), dict(n_subspaces=2, lag_weights='learned')]
# stage 4: running summaries of the past (partners), which read beyond the lags by design
PARTNERS = [dict(partners='ema'), dict(partners='selective', n_subspaces=2, lag_weights='learned')]
# stage 5: the pairs read without their normalisation, or linearly (no geometry), alone and with the rest
CONTROLS = [dict(pairing='unnormalised'), dict(pairing='linear'),
            dict(pairing='unnormalised', partners='ema', lag_weights='learned'),
            dict(pairing='linear', partners='selective', n_subspaces=2, lag_weights='learned')]
# stage 6: a short causal convolution of the reduced vectors, alone and with the rest
CONV = [dict(z_conv=4), dict(z_conv=1), dict(z_conv=3, partners='selective', n_subspaces=2, lag_weights='learned'),
        dict(z_conv=2, pairing='linear', partners='ema', lag_weights='learned'), dict(z_conv=4, pairing='unnormalised')]
# the other normalisations: unit vectors before the wedge, an RMS norm after the mean, with the rest
OTHER_NORMS = [dict(pairing='unit'), dict(pairing='unnormalised', p_norm='rms'),
               dict(pairing='unit', p_norm='rms', partners='selective', n_subspaces=2, lag_weights='learned')]
# every variant of the mixer: what holds for any of them (causality, the fast mixer against the spec and the
# reference, decoding) is checked on each; a new variant adds its own list here (docs/variants.md)
EVERY = VARIANTS + PARTNERS + CONTROLS + CONV + OTHER_NORMS


def tiny(**kw):
    """A model small enough for CPU tests; dropout off so outputs are deterministic."""
    args = dict(block_size=40, vocab_size=50, n_layer=2, n_head=4, n_embd=32, dropout=0.0, reduced_dim=8)
    args.update(kw)
    if args.get('pos_emb', True) and 'lags' not in kw:  # the paper's lags that a position of a short block can reach
        args['lags'] = tuple(l for l in PAPER_LAGS if l < args['block_size'])
    return GPT(GPTConfig(**args)).eval()


def all_logits(model, idx):
    return model(idx, torch.zeros_like(idx))[0]  # with targets, forward returns logits at every position

# -----------------------------------------------------------------------------
# causality


@pytest.mark.parametrize('mixer', MIXERS)
@pytest.mark.parametrize('norm', NORMS)
def test_future_tokens_never_change_past_logits(mixer, norm):
    torch.manual_seed(0)
    model = tiny(mixer=mixer, norm=norm)
    idx = torch.randint(0, 50, (2, 40))
    base = all_logits(model, idx)
    for t in (0, 1, 7, 20, 39):
        changed = idx.clone()
        changed[:, t:] = (changed[:, t:] + 1 + torch.randint(0, 48, changed[:, t:].shape)) % 50
        out = all_logits(model, changed)
        torch.testing.assert_close(out[:, :t], base[:, :t], rtol=0, atol=1e-6)
        assert not torch.allclose(out[:, t], base[:, t]), "the changed position itself must see its token"

# -----------------------------------------------------------------------------
# the lag structure


def positions_seen(model, t, T=40):
    """Offsets k >= 1 such that changing token t-k changes the logits at t."""
    torch.manual_seed(1)
    idx = torch.randint(0, 50, (1, T))
    base = all_logits(model, idx)[0, t]
    seen = set()
    for k in range(1, t + 1):
        changed = idx.clone()
        changed[0, t - k] = (changed[0, t - k] + 1) % 50
        if not torch.allclose(all_logits(model, changed)[0, t], base, rtol=0, atol=1e-7):
            seen.add(k)
    return seen


@pytest.mark.parametrize('mixer, variant', [('grassmann', v) for v in EVERY[1:]] + [('grassmann', dict(attn_layers=(1,), z_conv=3)),
                                             ('attention', dict(attn_window=5))])
def test_every_variant_is_causal(mixer, variant):
    """No logit depends on a later token, whatever the variant: a change to the tokens from t on leaves
    every logit before t as it was (partners and convolutions reach far back, never forward)."""
    torch.manual_seed(0)
    model = tiny(mixer=mixer, n_layer=2, **variant)
    for block in model.transformer.h:  # a convolution away from its identity init
        with_biases(block.mixer)
    idx = torch.randint(0, 50, (2, 40))
    base = all_logits(model, idx)
    for t in (1, 9, 30):
        changed = idx.clone()
        changed[:, t:] = (changed[:, t:] + 1) % 50
        out = all_logits(model, changed)
        assert torch.equal(out[:, :t], base[:, :t]) and not torch.allclose(out[:, t:], base[:, t:])


@pytest.mark.parametrize('norm', NORMS)
def test_one_layer_all_lags_sees_exactly_the_lags(norm):
    torch.manual_seed(0)
    model = tiny(n_layer=1, lags=PAPER_LAGS, lag_schedule='all', norm=norm)
    assert positions_seen(model, t=30) == set(PAPER_LAGS)  # so t-3, t-5, t-17 ... are never read
    assert positions_seen(model, t=10) == {1, 2, 4, 8}  # lags reaching before position 0 drop out


@pytest.mark.parametrize('variant', VARIANTS[1:])
def test_study_variants_are_causal_and_see_exactly_their_lags(variant):
    torch.manual_seed(0)
    model = tiny(n_layer=1, lags=(1, 2, 4, 8, 16, 32), reduced_dim=4, **variant)
    assert positions_seen(model, t=39) == {1, 2, 4, 8, 16, 32}
    assert positions_seen(model, t=20) == {1, 2, 4, 8, 16}
    model = tiny(lags=(1, 3), **variant)  # two layers: reach 1 + 3 = 6 at most, never 5
    assert positions_seen(model, t=30) == {1, 2, 3, 4, 6}



@pytest.mark.parametrize('partners', ('ema', 'selective'))
def test_partners_read_the_whole_past_and_never_the_future(partners):
    """One layer with the one lag 1: without partners position t reads t-1 only; a running summary
    carries every earlier position to it (the reach the lags lack), and still nothing after t."""
    torch.manual_seed(0)
    model = tiny(n_layer=1, lags=(1,), partners=partners)
    assert positions_seen(model, t=30) == set(range(1, 31))
    assert positions_seen(tiny(n_layer=1, lags=(1,)), t=30) == {1}
    assert_never_reads_the_future(model)


def assert_never_reads_the_future(model, t=20):
    """Changing tokens t.. changes no logit before t, bit for bit, and the one at t."""
    idx = torch.randint(0, 50, (2, 40))
    base = all_logits(model, idx)
    changed = idx.clone()
    changed[:, t:] = (changed[:, t:] + 1) % 50
    out = all_logits(model, changed)
    torch.testing.assert_close(out[:, :t], base[:, :t], rtol=0, atol=0)
    assert not torch.allclose(out[:, t], base[:, t])

def test_layer_schedule_gives_each_layer_its_own_lag():
    torch.manual_seed(0)
    cfg = GPTConfig(n_layer=12, n_embd=32, n_head=4, reduced_dim=8, lags=PAPER_LAGS, lag_schedule='layer', dropout=0.0)
    model = GPT(cfg).eval()
    T, t = 40, 30
    for layer, block in enumerate(model.transformer.h):
        lag = PAPER_LAGS[layer % len(PAPER_LAGS)]
        assert block.mixer.lags == (lag,)
        h = torch.randn(1, T, 32)
        base = block.mixer(h)[0, t]
        seen = set()
        for k in range(1, t + 1):
            changed = h.clone()
            changed[0, t - k] += 1.0
            if not torch.allclose(block.mixer(changed)[0, t], base, rtol=0, atol=1e-7):
                seen.add(k)
        assert seen == {lag}, f"layer {layer}"

# -----------------------------------------------------------------------------
# Plücker coordinates


def test_plucker_matches_hand_computed_minors():
    a = torch.tensor([1., 0., 2., -1.])
    b = torch.tensor([3., 1., 0., 2.])
    # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3): det [[a_i, a_j], [b_i, b_j]] worked out by hand
    assert plucker(a, b).tolist() == [1., -6., 5., -2., 1., 4.]
    assert plucker(torch.tensor([1., 2., 3.]), torch.tensor([4., 5., 6.])).tolist() == [-3., -6., -3.]
    assert plucker(a, b).shape[-1] == math.comb(4, 2)


def test_plucker_is_antisymmetric_and_basis_covariant():
    torch.manual_seed(0)
    a, b = torch.randn(2, 5, 32, dtype=torch.float64)
    p = plucker(a, b)
    assert p.shape == (5, 496)
    torch.testing.assert_close(plucker(b, a), -p)
    torch.testing.assert_close(plucker(a, a), torch.zeros_like(p))
    torch.testing.assert_close(plucker(a, b + 2.5 * a), p)  # the plane, not the basis, matters
    m = torch.tensor([[0.3, -1.7], [2.2, 0.9]], dtype=torch.float64)  # any 2x2 change of basis
    a2, b2 = m[0, 0] * a + m[0, 1] * b, m[1, 0] * a + m[1, 1] * b
    torch.testing.assert_close(plucker(a2, b2), torch.det(m) * p)
    # Lagrange's identity, which the fast mixer relies on
    lagrange = (a * a).sum(-1) * (b * b).sum(-1) - (a * b).sum(-1) ** 2
    torch.testing.assert_close((p * p).sum(-1), lagrange)

# -----------------------------------------------------------------------------
# the mixer: the fast path equals the spec's eight steps


def spec_mixer(mixer, h, H=1, learned=False, pairing='wedge'):
    """Steps 1-8 of the spec written out with loops over positions, lags and subspaces; with learned
    lag weights, step 5 is a softmax over the lags valid at t of W_lag h_t + b_lag. Partners (stage 4):
    m_t^k = γ_t^k m_{t-1}^k + (1 - γ_t^k) z_{t-1}, m_0 = 0, γ = σ(θ) or σ(W_γ h_t + b_γ), each plane
    span(z_t, m_t^k) one more term of step 5 from t = 1 on (logit row L + k). Stage-5 pairings:
    'unnormalised' skips step 4; 'linear' averages the other vectors themselves (0 where none is
    valid) and projects [z_t^1; w̄_t^1; ...; z_t^H; w̄_t^H]. The other normalisations: 'unit' reads both
    vectors of each pair as unit vectors and skips step 4; p_norm = 'rms' scales each subspace's p̄."""
    r = mixer.reduce.out_features // H
    B, T, _ = h.shape
    K, L = mixer.n_partners, len(mixer.lags)
    zs = [F.linear(h, mixer.reduce.weight[k * r:(k + 1) * r], mixer.reduce.bias[k * r:(k + 1) * r]) for k in range(H)]
    if mixer.conv_taps is not None:  # stage 6: z̃_t = Σ_j c_j ⊙ z_{t-j} + b_c, nothing before position 0
        c, b = mixer.conv_taps.view(-1, H, r), mixer.conv_bias.view(H, r)
        zs = [torch.stack([b[k] + sum(c[j, k] * zs[k][:, t - j] for j in range(c.size(0)) if t - j >= 0)
                           for t in range(T)], dim=1) for k in range(H)]
    ms = [[torch.zeros(B, r, dtype=h.dtype) for _ in range(K)] for _ in range(H)]  # m_0 of each subspace and partner
    out = torch.empty_like(h)
    for t in range(T):
        if K and t >= 1:
            theta = mixer.decay_logits.expand(B, K) if mixer.partners == 'ema' else mixer.decay(h[:, t])  # (B, K)
            gamma = torch.sigmoid(theta)
            ms = [[gamma[:, j:j + 1] * ms[k][j] + (1 - gamma[:, j:j + 1]) * zs[k][:, t - 1] for j in range(K)] for k in range(H)]
        valid = [lag for lag in mixer.lags if t - lag >= 0]
        rows = [mixer.lags.index(lag) for lag in valid] + ([L + j for j in range(K)] if t >= 1 else [])
        if learned and rows:
            logits = mixer.lag_logits(h[:, t])[:, rows]  # (B, valid)
            weight = logits.exp() / logits.exp().sum(-1, keepdim=True)
        else:
            weight = torch.full((B, len(rows)), 1.0 / max(len(rows), 1), dtype=h.dtype)
        pbars = []
        for k in range(H):  # subspace k: rows k·r .. (k+1)·r - 1 of W_red
            z = zs[k]
            pbar = torch.zeros(B, r if pairing == 'linear' else r * (r - 1) // 2, dtype=h.dtype)
            partners = [ms[k][j] for j in range(K)] if t >= 1 else []
            for v, other in enumerate([z[:, t - lag] for lag in valid] + partners):
                if pairing == 'linear':
                    pbar = pbar + weight[:, v:v + 1] * other
                    continue
                zt = z[:, t]
                if pairing == 'unit':  # both vectors of the pair as unit vectors: ẑ = z / max(‖z‖₂, 1e-6)
                    zt, other = (x / torch.sqrt((x * x).sum(-1, keepdim=True)).clamp_min(1e-6) for x in (zt, other))
                p = plucker(zt, other)
                if pairing == 'wedge':
                    p = p / p.norm(dim=-1, keepdim=True).clamp_min(mixer.eps)
                pbar = pbar + weight[:, v:v + 1] * p
            if mixer.p_gain is not None:  # p_norm = 'rms': γ^k ⊙ p̄^k / sqrt(mean_i (p̄_i^k)² + 1e-6)
                C = pbar.size(-1)
                pbar = mixer.p_gain[k * C:(k + 1) * C] * pbar / torch.sqrt((pbar * pbar).mean(-1, keepdim=True) + 1e-6)
            pbars += [z[:, t], pbar] if pairing == 'linear' else [pbar]
        g = mixer.project(torch.cat(pbars, dim=-1))
        alpha = torch.sigmoid(mixer.gate(torch.cat([h[:, t], g], -1)))
        out[:, t] = alpha * h[:, t] + (1 - alpha) * g
    return out


@pytest.mark.parametrize('variant', EVERY)
@pytest.mark.parametrize('schedule', ('all', 'layer'))
def test_mixer_matches_spec_written_out(schedule, variant):
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=32, n_head=4, reduced_dim=8, lags=PAPER_LAGS, lag_schedule=schedule, **variant)
    mixer = GrassmannMixer(cfg, cfg.layer_lags(3)).double()
    for m in mixer.modules():  # non-zero biases, so that a misplaced bias shows
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.bias, std=0.5)
    if mixer.p_gain is not None:  # and gains other than their initial 1
        torch.nn.init.normal_(mixer.p_gain, mean=1.0, std=0.5)
    h = torch.randn(2, 24, 32, dtype=torch.float64)
    expected = spec_mixer(mixer, h, cfg.n_subspaces, cfg.lag_weights == 'learned', cfg.pairing)
    torch.testing.assert_close(mixer(h), expected)
    torch.testing.assert_close(mixer(h, reference=True), expected)
    if cfg.lag_weights == 'learned' and len(mixer.lags) > 1:  # the weights must matter, or the test says nothing
        torch.nn.init.normal_(mixer.lag_logits.weight, std=1.0)
        assert not torch.allclose(mixer(h), expected)
    if cfg.partners != 'none':  # and so must the decays
        with torch.no_grad():
            (mixer.decay_logits if cfg.partners == 'ema' else mixer.decay.bias).add_(1.0)
        assert not torch.allclose(mixer(h), expected)


def degenerate_input(T=24, d=32):
    """Every z_t parallel to every other one (h_t a multiple of one vector, zero bias), plus a zero row."""
    torch.manual_seed(0)
    scale = torch.tensor([1., 2., 2., 4., 1., 0.5, 2., 1.] * (T // 8))[:T]
    h = scale.view(1, T, 1) * torch.randn(1, 1, d)
    h[0, 5] = 0.0
    return h


def values_and_gradients(mixer, h, reference):
    mixer.zero_grad()
    x = h.clone().requires_grad_()
    y = mixer(x, reference=reference)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    return [y, x.grad] + [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in mixer.parameters()]


@pytest.mark.parametrize('variant', EVERY)
@pytest.mark.parametrize('schedule', ('all', 'layer'))
# short inputs take project_wedge's Plücker-vector path, long ones (B·T > r²) its outer-product path;
# partners run in chunks of 64 positions: 200 crosses three chunk boundaries
@pytest.mark.parametrize('T', (1, 2, 3, 17, 64, 200))
def test_fast_mixer_equals_reference_values_and_gradients(schedule, T, variant):
    torch.manual_seed(T)
    cfg = GPTConfig(n_embd=32, n_head=4, reduced_dim=16, lags=PAPER_LAGS, lag_schedule=schedule, **variant)
    mixer = GrassmannMixer(cfg, cfg.layer_lags(2))
    h = torch.randn(3, T, 32)
    for fast, ref in zip(values_and_gradients(mixer, h, False), values_and_gradients(mixer, h, True)):
        # a bias's gradient sums 3·T terms of up to ~10: float32 sums in another order differ by ~1e-5 of it
        # (1.5e-5 for T = 200 on an Intel Xeon with AVX-512), a wrong term by far more
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=2e-5 * max(1.0, ref.abs().max().item()))


@pytest.mark.parametrize('schedule', ('all', 'layer'))
@pytest.mark.parametrize('T', (24, 96))  # both paths of project_wedge
def test_fast_mixer_on_degenerate_planes_is_as_accurate_as_the_reference(schedule, T):
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=32, n_head=4, reduced_dim=16, lags=PAPER_LAGS, lag_schedule=schedule)
    mixer = GrassmannMixer(cfg, cfg.layer_lags(0))
    torch.nn.init.zeros_(mixer.reduce.bias)
    h = torch.randn(3, T, 32)
    h[1, :24] = degenerate_input()[0]  # parallel and zero z mixed in with ordinary ones
    fast, ref = values_and_gradients(mixer, h, False), values_and_gradients(mixer, h, True)
    torch.testing.assert_close(fast[0], ref[0], rtol=1e-5, atol=1e-5)
    # p / max(‖p‖, eps) has slope 1/eps = 1e6 at a degenerate plane: gradients there reach ~1e5 and
    # cancel, so in float32 neither path can match the other to 1e-5. Both are judged against the
    # reference in float64, and the fast path must be no less accurate than the float32 reference.
    truth = values_and_gradients(mixer.double(), h.double(), True)
    for f, r, t in zip(fast, ref, truth):
        assert (f.double() - t).abs().max() <= 2 * (r.double() - t).abs().max() + 1e-5


def test_fast_mixer_under_torch_compile():
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=32, n_head=4, reduced_dim=8)
    mixer = GrassmannMixer(cfg, cfg.lags)
    h = torch.randn(2, 40, 32, requires_grad=True)
    compiled = torch.compile(mixer)
    y = compiled(h)
    y.sum().backward()
    g_compiled = h.grad.clone()
    h.grad = None
    y_ref = mixer(h, reference=True)
    y_ref.sum().backward()
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_compiled, h.grad, rtol=1e-5, atol=1e-5)

# -----------------------------------------------------------------------------
# the lean mixer's hand-written backward passes equal autograd's on the same forward, for any upstream
# gradient (the model only ever sends LagMean one orthogonal to z, which would hide a wrong z·y term)


def grads_of(fn, inputs, upstream):
    xs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = fn(*xs)
    (out * upstream).sum().backward()
    return [out] + [x.grad for x in xs if x.requires_grad]


@pytest.mark.parametrize('learned', (False, True))
def test_lag_mean_backward_equals_autograd(learned):
    torch.manual_seed(0)
    lags, eps2 = (1, 2, 5), 1e-12
    T, B, H, r = 9, 3, 2, 4
    z = torch.randn(T, B, H, r, dtype=torch.float64)
    z[4, 0] = 0.0  # a zero vector: ‖z‖² below its floor
    z[6, 1, 0] = 2.5 * z[5, 1, 0]  # a parallel pair: ‖b‖ = 0, the Plücker floor
    z[3, 2] *= 1e-7  # ‖z‖ ‖b‖ below the Plücker floor, ‖z‖² above its own
    z[7, 0] *= 1e-16  # both below their floors
    z_all = F.pad(z, (0, 0, 0, 0, 0, 0, max(lags), 0))
    weights = torch.rand(len(lags), T, B if learned else 1, 1, 1, dtype=torch.float64)

    def by_autograd(z_all, weights):
        _, _, _, _, b, _, n2 = lag_terms(z_all, lags)
        return (weights * (b / n2.clamp_min(eps2).sqrt())).sum(0)
    upstream = torch.randn(T, B, H, r, dtype=torch.float64)
    fast = grads_of(lambda z_all, weights: LagMean.apply(z_all, weights, lags, eps2), (z_all, weights), upstream)
    for f, a in zip(fast, grads_of(by_autograd, (z_all, weights), upstream)):
        torch.testing.assert_close(f, a, rtol=1e-10, atol=1e-10)



@pytest.mark.parametrize('shared', (True, False))  # the ema's decays (one per summary) or the selective's (per position)
@pytest.mark.parametrize('T', (9, 150))  # one chunk of the recurrence, or three
def test_lag_mean_with_partners_backward_equals_autograd(shared, T):
    """The partners inside LagMean: computed from the decays' logits, recomputed in backward and
    differentiated by hand (the adjoint recurrence), against autograd through the same forward."""
    torch.manual_seed(T)
    lags, eps2, K = (1, 2, 5), 1e-12, 3
    B, H, r = 3, 2, 4
    z_all = F.pad(torch.randn(T, B, H, r, dtype=torch.float64), (0, 0, 0, 0, 0, 0, max(lags), 0))
    weights = torch.rand(len(lags) + K, T, B, 1, 1, dtype=torch.float64)
    decay = torch.randn(1 if shared else B, 1 if shared else T, K, dtype=torch.float64) + 1.0

    def by_autograd(z_all, weights, decay):
        _, _, _, _, b, _, n2 = lag_terms(z_all, lags, summaries_of(z_all, lags, decay))
        return (weights * (b / n2.clamp_min(eps2).sqrt())).sum(0)
    upstream = torch.randn(T, B, H, r, dtype=torch.float64)
    fast = grads_of(lambda z_all, weights, decay: LagMean.apply(z_all, weights, lags, eps2, None, decay),
                    (z_all, weights, decay), upstream)
    for f, a in zip(fast, grads_of(by_autograd, (z_all, weights, decay), upstream)):
        torch.testing.assert_close(f, a, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('T, chunk', [(10, 4), (130, 64), (7, 64), (200, 16)])
@pytest.mark.parametrize('per_summary', (False, True))  # u shared by the K summaries (z_{t-1}), or one each
def test_running_summaries_follow_the_recurrence_written_out(T, chunk, per_summary):
    """The chunked form against m_t = γ_t m_{t-1} + (1 - γ_t) u_t one position at a time, from a given
    m0 and from zeros, with decays shared by the batch and per position."""
    torch.manual_seed(T)
    B, K, N = 2, 3, 5
    u = torch.randn(B, T, K, N, dtype=torch.float64) if per_summary else torch.randn(B, T, N, dtype=torch.float64)
    for Bd, Td in ((1, 1), (B, T)):
        logits = 2 * torch.randn(Bd, Td, K, dtype=torch.float64)
        for m0 in (None, torch.randn(B, K, N, dtype=torch.float64)):
            m = torch.zeros(B, K, N, dtype=torch.float64) if m0 is None else m0
            gamma = torch.sigmoid(logits).expand(B, T, K)
            expected = []
            for t in range(T):
                m = gamma[:, t, :, None] * m + (1 - gamma[:, t, :, None]) * (u[:, t] if per_summary else u[:, t, None])
                expected.append(m)
            out = running_summaries(u, F.logsigmoid(logits), torch.sigmoid(-logits), m0, chunk)
            torch.testing.assert_close(out, torch.stack(expected, 1), rtol=1e-10, atol=1e-10)

def test_wedge_project_and_gate_mix_backward_equal_autograd():
    torch.manual_seed(0)
    B, T, H, r, d = 2, 5, 2, 4, 8
    z, w = torch.randn(2, B, T, H, r, dtype=torch.float64)
    weight, bias = torch.randn(d, H * r * (r - 1) // 2, dtype=torch.float64), torch.randn(d, dtype=torch.float64)

    def wedge_by_autograd(z, w, weight, bias):
        return F.linear(plucker(z, w).flatten(-2), weight, bias)
    upstream = torch.randn(B, T, d, dtype=torch.float64)
    for f, a in zip(grads_of(WedgeProject.apply, (z, w, weight, bias), upstream),
                    grads_of(wedge_by_autograd, (z, w, weight, bias), upstream)):
        torch.testing.assert_close(f, a)
    h, g = torch.randn(2, B, T, d, dtype=torch.float64)
    weight, bias = torch.randn(d, 2 * d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)

    def gate_by_autograd(h, g, weight, bias):
        alpha = torch.sigmoid(F.linear(torch.cat([h, g], -1), weight, bias))
        return alpha * h + (1 - alpha) * g
    for f, a in zip(grads_of(lambda h, g, W, b: GateMix.apply(h, h, g, W, b), (h, g, weight, bias), upstream),
                    grads_of(gate_by_autograd, (h, g, weight, bias), upstream)):
        torch.testing.assert_close(f, a)


@pytest.mark.parametrize('variant', VARIANTS[:3])
def test_fast_mixer_under_bf16_autocast_follows_the_reference(variant):
    """Under autocast the hand-written backward passes cast their matmuls as autograd's would: values
    and gradients within bf16's rounding of the reference's (a float32 matmul would be closer, a
    missing cast or a wrong term much further)."""
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=64, n_head=4, reduced_dim=8, **variant)
    mixer = GrassmannMixer(cfg, cfg.lags)
    h = torch.randn(4, 48, 64)  # B·T > r²: the outer-product path

    def run(reference):  # forward under autocast, backward outside it, as train.py does
        mixer.zero_grad()
        x = h.clone().requires_grad_()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            y = mixer(x, reference=reference)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        return [y, x.grad] + [p.grad for p in mixer.parameters()]
    for f, r in zip(run(False), run(True)):
        assert f.dtype == r.dtype
        torch.testing.assert_close(f.float(), r.float(), rtol=0.05, atol=0.05 * r.float().abs().max().item())


@pytest.mark.parametrize('dtype', ('float32', 'bfloat16'))
def test_grassmann_mixer_keeps_no_more_for_backward_than_attention(dtype):
    cfg = GPTConfig(block_size=128)
    h = torch.randn(32, 128, 256, requires_grad=True)  # a training batch; the few tokens of decoding take another path
    ctx = torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == 'bfloat16')
    # the study's stage-4 arms too: their partners are recomputed in backward, not kept
    arms = {p: GPTConfig(block_size=128, n_subspaces=4, reduced_dim=16, lag_weights='learned', partners=p)
            for p in ('ema', 'selective')}
    calls = dict(attention=lambda: CausalSelfAttention(cfg)(h), grassmann=lambda: GrassmannMixer(cfg, cfg.lags)(h),
                 reference=lambda: GrassmannMixer(cfg, cfg.lags)(h, reference=True),
                 **{p: (lambda c=c: GrassmannMixer(c, c.lags)(h)) for p, c in arms.items()})
    with ctx:  # what bench.py reports on a CPU: the bytes each call keeps for backward
        kept = {name: memory_mb(call, call, 'cpu') for name, call in calls.items()}
    assert max(kept['grassmann'], kept['ema'], kept['selective']) <= kept['attention'] < kept['reference'], kept

# -----------------------------------------------------------------------------
# no NaN or Inf where the plane is undefined


@pytest.mark.parametrize('norm', NORMS)
def test_finite_at_position_zero(norm):
    model = tiny(norm=norm).train()
    idx = torch.randint(0, 50, (2, 1))  # one position: no lag is valid anywhere
    logits, loss = model(idx, idx)
    loss.backward()
    assert torch.isfinite(logits).all() and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize('what', ('zero', 'parallel'))
def test_finite_for_zero_and_parallel_vectors(what):
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=32, n_head=4, reduced_dim=8)
    mixer = GrassmannMixer(cfg, cfg.lags)
    torch.nn.init.zeros_(mixer.reduce.bias)  # so that z is exactly 0, or exactly parallel
    h = torch.zeros(2, 24, 32) if what == 'zero' else degenerate_input()
    h.requires_grad_()
    z = mixer.reduce(h)
    assert (plucker(z[:, 1:], z[:, :-1]) == 0).all(), "the test input must be degenerate"
    y = mixer(h)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(h.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in mixer.parameters())
    # a degenerate plane contributes p = 0, so the mixer sees g = b_plü everywhere
    g = mixer.project(plucker_mean(mixer, z.float().unsqueeze(2)))  # (B, T, H=1, r)
    torch.testing.assert_close(g, mixer.project.bias.expand_as(g))

# -----------------------------------------------------------------------------
# sizes and FLOPs


@pytest.mark.parametrize('mixer, per_block, mixer_only, total_bert, total_gpt2', [
    ('attention', 789_760, 263_168, 12_585_472, 17_649_664),
    ('grassmann', 793_376, 266_784, 12_607_168, 17_671_360),
])
def test_parameter_counts_match_the_spec(mixer, per_block, mixer_only, total_bert, total_gpt2):
    model = GPT(GPTConfig(mixer=mixer, vocab_size=30522))
    assert model.num_params() == total_bert
    assert sum(p.numel() for p in model.transformer.h[0].parameters()) == per_block
    assert sum(p.numel() for p in model.transformer.h[0].mixer.parameters()) == mixer_only
    assert GPT(GPTConfig(mixer=mixer, vocab_size=50304)).num_params() == total_gpt2
    assert model.lm_head.weight is model.transformer.wte.weight


@pytest.mark.parametrize('variant, total', [
    (dict(n_subspaces=4, reduced_dim=16), 12_631_936),  # + 8,224 - 4,096 per layer
    (dict(lag_weights='learned'), 12_616_420),  # + 6 x 256 + 6 per layer
    (dict(lags=(1, 2, 4)), 12_607_168),  # lags have no parameters
    (dict(lags=(1, 2, 4, 8, 16, 32, 64), lag_weights='learned'), 12_617_962),  # + 7 x 256 + 7 per layer
    (dict(partners='ema'), 12_607_186),  # + K = 3 decays per layer
    (dict(partners='selective'), 12_611_794),  # + K (d + 1) = 771 per layer
    # the study's stage-4 arms: + K rows of W_lag (771) per layer, then the decays
    (dict(n_subspaces=4, reduced_dim=16, lag_weights='learned', norm='pre', partners='ema'), 12_645_832),
    (dict(n_subspaces=4, reduced_dim=16, lag_weights='learned', norm='pre', partners='selective'), 12_650_440),
])
def test_study_variant_parameter_counts_match_the_spec(variant, total):
    assert GPT(GPTConfig(mixer='grassmann', vocab_size=30522, **variant)).num_params() == total


def test_init_follows_the_spec():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30522))
    assert abs(model.transformer.wte.weight.std().item() - 0.02) < 1e-3
    assert abs(model.transformer.h[0].mixer.project.weight.std().item() - 0.02) < 1e-3
    assert all((m.bias == 0).all() for m in model.modules() if isinstance(m, torch.nn.Linear) and m.bias is not None)


@pytest.mark.parametrize('mixer', MIXERS)
def test_torch_init_is_pytorchs_defaults_with_the_tied_matrix_normal(mixer):
    """init='torch', the seed reproduction's: every Linear kaiming-uniform (weights and biases within
    1/sqrt(fan_in)), LayerNorms 1 and 0, token and position tables N(0, 1), and the tied matrix the
    token table's N(0, 1), not the head's kaiming-uniform (the tie makes one of them win)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(mixer=mixer, vocab_size=30522, init='torch'))
    assert model.lm_head.weight is model.transformer.wte.weight
    assert abs(model.transformer.wte.weight.std().item() - 1.0) < 0.01 and abs(model.transformer.wpe.weight.std().item() - 1.0) < 0.05
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and m is not model.lm_head:
            bound = 1 / math.sqrt(m.in_features)
            assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.9 * bound  # U(-b, b) fills its range
            assert m.bias.abs().max() <= bound and m.bias.abs().max() > 0.5 * bound  # biases too, not zeros
            assert abs(m.weight.std().item() - bound / math.sqrt(3)) < 0.1 * bound
        if isinstance(m, torch.nn.LayerNorm):
            assert (m.weight == 1).all() and (m.bias == 0).all()



@pytest.mark.parametrize('init', ('normal', 'torch'))
@pytest.mark.parametrize('partners', ('ema', 'selective'))
def test_partners_decays_start_at_their_time_scales(init, partners):
    """γ_k = σ(θ_k) with 1 / (1 - γ_k) = τ_k = 4, 16, 64 in every layer, under either init (the model's
    init zeroes or draws every bias, b_γ included, so the decays are set after it); W_γ at the init's
    usual scale, so that at the start the selective decays are the ema's, nudged by h_t."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30522, partners=partners, init=init))
    for block in model.transformer.h:
        mixer = block.mixer
        theta = mixer.decay_logits if partners == 'ema' else mixer.decay.bias
        tau = 1 / (1 - torch.sigmoid(theta.double()))  # θ is stored in float32
        torch.testing.assert_close(tau, torch.tensor([4.0, 16.0, 64.0], dtype=torch.float64), rtol=1e-6, atol=0)
        if partners == 'selective':
            std = mixer.decay.weight.std().item()
            assert abs(std - (0.02 if init == 'normal' else 1 / math.sqrt(3 * 256))) < 0.003, std

@pytest.mark.parametrize('mixer, variant', [('attention', {})] + [('grassmann', v) for v in VARIANTS + PARTNERS + CONTROLS + CONV[:3]
                                                                  + [dict(attn_layers=(1,)), dict(attn_layers=(0,), z_conv=4)]
                                                                  + OTHER_NORMS])
def test_flops_per_token_counts_every_matmul(mixer, variant):
    model = tiny(mixer=mixer, n_layer=3, **variant)
    B, T = 2, 40  # B·T > r², so the mixer takes its outer-product path
    # the math backend runs attention as matmuls the counter sees (the fused CPU kernel is invisible to it)
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(torch.randint(0, 50, (B, T)), torch.zeros(B, T, dtype=torch.long))
    matmul_fwd = counter.get_total_flops() / (B * T)
    elementwise = 0
    if mixer == 'grassmann':
        cfg = model.config
        r, pairs, H = cfg.reduced_dim, math.comb(cfg.reduced_dim, 2), cfg.n_subspaces
        n_grassmann = cfg.n_layer - len(cfg.attn_layers)  # a hybrid's attention blocks are all matmuls
        # the fast mixer feeds W_plü the r² outer product instead of the C(r,2) Plücker vector: FLOPs
        # count the architecture's work, not that implementation's extra inputs
        # (linear pairs feed W_lin their 2r inputs as they are)
        # (linear pairs feed W_lin their 2r inputs as they are, and the RMS norm reads the Plücker vector itself)
        matmul_fwd -= 0 if cfg.pairing == 'linear' or cfg.p_norm == 'rms' else 2 * H * (r * r - pairs) * cfg.n_embd * n_grassmann
        # the Plücker terms are not matmuls, so the counter cannot see them: the wedge, then per lag (and
        # partner, which costs what a lag does) a dot and an axpy, or (without normalisation) an axpy only
        K = cfg.n_partners if cfg.partners != 'none' else 0
        per_lag = {'wedge': 4 * r, 'unnormalised': 2 * r, 'linear': 2 * r, 'unit': 2 * r}[cfg.pairing]
        wedge = 0 if cfg.pairing == 'linear' else 3 * pairs
        # the convolution of z, a multiply-add per tap and channel; unit vectors: a dot and a division per vector
        # normalised (z_t and each partner); the RMS norm: squares summed, a scale and a gain per coordinate
        other = (3 * r * (1 + K) if cfg.pairing == 'unit' else 0) + (4 * pairs if cfg.p_norm == 'rms' else 0)
        elementwise = 3 * H * (wedge + per_lag * (len(cfg.lags) + K) + 2 * cfg.z_conv * r + other) * n_grassmann
    assert flops_per_token(model.config, T) == 3 * matmul_fwd + elementwise

# -----------------------------------------------------------------------------
# learning and generation


@pytest.mark.parametrize('mixer', MIXERS)
@pytest.mark.parametrize('norm', NORMS)
def test_tiny_model_overfits_one_batch(mixer, norm):
    torch.manual_seed(0)
    model = tiny(mixer=mixer, norm=norm, block_size=16).train()
    data = torch.randint(0, 50, (4, 17))
    x, y = data[:, :-1], data[:, 1:]
    opt = model.configure_optimizers(0.0, 3e-3, (0.9, 0.99), 'cpu')
    first = model(x, y)[1].item()
    for _ in range(300):
        loss = model(x, y)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 10, f"loss {first:.3f} -> {loss.item():.3f}"


@pytest.mark.parametrize('mixer', MIXERS)
@pytest.mark.parametrize('incremental', (True, False))
def test_generate_slides_past_block_size(mixer, incremental):
    torch.manual_seed(0)
    model = tiny(mixer=mixer, block_size=8).double()
    for p in model.parameters():  # larger than the init, so that the context decides the next token
        torch.nn.init.normal_(p, std=0.3)
    prompt = torch.randint(0, 50, (2, 3))
    torch.manual_seed(1)
    out = model.generate(prompt, max_new_tokens=20, incremental=incremental)
    torch.manual_seed(1)
    idx = prompt  # by hand: sample from the last position of the last block_size tokens, positions from 0
    for _ in range(20):
        probs = torch.softmax(all_logits(model, idx[:, -8:])[:, -1], dim=-1)
        idx = torch.cat([idx, torch.multinomial(probs, num_samples=1)], dim=1)
    assert torch.equal(out, idx)
    assert len(set(out[0, 8:].tolist())) > 3  # the test must see the window move, not one repeated token


@pytest.mark.parametrize('mixer', MIXERS)
def test_generate_at_temperature_0_takes_the_likeliest_token(mixer):
    torch.manual_seed(0)
    model = tiny(mixer=mixer, block_size=8).double()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    prompt = torch.randint(0, 50, (2, 3))
    outs = []
    for seed in (1, 2):  # no sampling: the seed changes nothing
        torch.manual_seed(seed)
        outs.append(model.generate(prompt, max_new_tokens=12, temperature=0, top_k=1000))
    idx = prompt
    for _ in range(12):
        idx = torch.cat([idx, all_logits(model, idx[:, -8:])[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(outs[0], idx) and torch.equal(outs[1], idx)


def test_too_long_sequence_is_refused():
    with pytest.raises(ValueError, match='block_size=8'):
        tiny(block_size=8)(torch.zeros(1, 9, dtype=torch.long))


def test_optimizer_decays_only_matrices():
    model = tiny()
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), 'cpu')
    decay, no_decay = opt.param_groups
    assert decay['weight_decay'] == 0.1 and all(p.dim() == 2 for p in decay['params'])
    assert no_decay['weight_decay'] == 0.0 and all(p.dim() == 1 for p in no_decay['params'])
    assert len(decay['params']) + len(no_decay['params']) == len(list(model.parameters())) and no_decay['params']


def test_optimizer_decays_every_parameter_in_the_seed_recipe():
    model = tiny()
    groups = [g for g in model.configure_optimizers(0.01, 1e-3, (0.9, 0.999), 'cpu', 'all').param_groups if g['params']]
    assert [g['weight_decay'] for g in groups] == [0.01]
    assert {id(p) for p in groups[0]['params']} == {id(p) for p in model.parameters()}
    with pytest.raises(ValueError, match="weight_decay_on='biases'"):
        model.configure_optimizers(0.01, 1e-3, (0.9, 0.999), 'cpu', 'biases')

# -----------------------------------------------------------------------------
# bad configuration


@pytest.mark.parametrize('field, value', [
    ('mixer', 'mamba'), ('norm', 'sandwich'), ('lags', (1, 0, 4)), ('lags', ()), ('n_head', 3),
    ('reduced_dim', 1), ('lag_schedule', 'random'), ('vocab_size', 'abc'), ('n_layer', 2.5), ('n_embd', True),
    ('n_subspaces', 0), ('lag_weights', 'attention'), ('init', 'xavier'), ('partners', 'lstm'), ('n_partners', 0),
    ('attn_layers', (6,)), ('attn_layers', (-1,)), ('attn_layers', (1.5,)), ('z_conv', -1), ('z_conv', 2.0),
    ('pairing', 'sphere'), ('p_norm', 'layer'),
])
def test_bad_config_values_raise_a_clear_error(field, value):
    with pytest.raises(ValueError, match=field):
        GPTConfig(**{field: value})


def test_mfu_uses_the_device_peak_and_refuses_to_guess(monkeypatch):
    model = tiny()
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: 'NVIDIA H100 80GB HBM3')
    assert estimate_mfu(model.config, 32, 1e6, 'cuda', 'bfloat16') == pytest.approx(flops_per_token(model.config, 32) * 1e6 / 989e12)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: 'NVIDIA H100 PCIe')
    assert estimate_mfu(model.config, 32, 1e6, 'cuda:0', 'bfloat16') == pytest.approx(flops_per_token(model.config, 32) * 1e6 / 756e12)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: 'Some Future GPU')
    assert estimate_mfu(model.config, 32, 1e6, 'cuda', 'bfloat16') is None
    for name, peak in (('NVIDIA L4', 121e12), ('NVIDIA A10', 125e12), ('NVIDIA A100-SXM4-80GB', 312e12),
                       ('NVIDIA L40S', None), ('NVIDIA A10G', None), ('NVIDIA H200 NVL', 989e12)):
        monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: name)
        mfu = estimate_mfu(model.config, 32, 1e6, 'cuda', 'bfloat16')
        assert mfu == (pytest.approx(flops_per_token(model.config, 32) * 1e6 / peak) if peak else None), name
    assert estimate_mfu(model.config, 32, 1e6, 'cpu', 'bfloat16') is None

# -----------------------------------------------------------------------------
# incremental decoding: a KV cache for attention, a ring of max(lags) reduced vectors for Grassmann


@pytest.mark.parametrize('mixer, schedule, variant', [('attention', 'all', {}), ('grassmann', 'all', {}), ('grassmann', 'layer', {})]
                         + [('grassmann', 'all', v) for v in VARIANTS[1:] + PARTNERS + CONTROLS + CONV[::2]]
                         + [('grassmann', 'layer', dict(attn_layers=(1,))), ('grassmann', 'all', dict(attn_layers=(0, 2), z_conv=3))]
                         + [('attention', 'all', dict(attn_window=5))])
@pytest.mark.parametrize('norm', NORMS)
@pytest.mark.parametrize('pos_emb', (True, False))
def test_incremental_decoding_gives_the_full_forward_logits(mixer, schedule, variant, norm, pos_emb):
    torch.manual_seed(0)
    model = tiny(mixer=mixer, norm=norm, lag_schedule=schedule, lags=PAPER_LAGS, pos_emb=pos_emb, n_layer=3, **variant)
    for block in model.transformer.h:  # a convolution away from the identity
        with_biases(block.mixer)
    if variant:  # in float64, where the fast paths leave no rounding to hide a mistake behind
        model = model.double()
    T = 40 if pos_emb else 90  # without a position table the model runs past block_size
    idx = torch.randint(0, 50, (2, T))
    full = all_logits(model, idx)
    cache = model.new_cache()
    steps = [model(idx[:, :5], cache=cache)[0], model(idx[:, 5:8], cache=cache)[0]]  # a prompt, then a chunk
    steps += [model(idx[:, t:t + 1], cache=cache)[0] for t in range(8, T)]  # then one token at a time
    tol = dict(rtol=1e-10, atol=1e-10) if variant else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, **tol)
    assert cache['pos'] == T


def with_biases(mixer):
    """mixer with non-zero biases: a tiny model's are zero, which would hide a missing bias term; and a
    convolution of z away from its identity init, which would hide the convolution."""
    for m in mixer.modules():
        if isinstance(m, torch.nn.Linear) and m.bias is not None:
            torch.nn.init.normal_(m.bias, std=0.5)
        if isinstance(m, GrassmannMixer) and m.conv_taps is not None:
            torch.nn.init.normal_(m.conv_taps, std=0.5)
            torch.nn.init.normal_(m.conv_bias, std=0.5)
    return mixer


@pytest.mark.parametrize('variant', EVERY + [dict(bias=False), dict(bias=False, partners='selective')])
def test_mixer_decoding_step_equals_its_full_forward(variant):
    """decode_step's fused matmuls against the full forward, with non-zero biases (a tiny model's are
    zero, which would hide a missing bias term), from position 0 on."""
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=32, n_head=4, reduced_dim=8, lags=PAPER_LAGS, **variant)
    mixer = with_biases(GrassmannMixer(cfg, cfg.lags).double())
    h = torch.randn(2, 24, 32, dtype=torch.float64)
    cache = {}
    steps = torch.cat([mixer(h[:, t:t + 1], cache=cache) for t in range(24)], dim=1)
    torch.testing.assert_close(steps, mixer(h), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('variant', VARIANTS[:3] + PARTNERS)
@pytest.mark.parametrize('mode', ('autocast', 'bf16_weights'))
def test_mixer_decoding_step_in_bf16_follows_its_full_forward(variant, mode):
    """In bf16 (under autocast, or a model cast to bf16) decode_step's matmuls run in bf16 but its
    Plücker steps, biases and gate in float32 at least: its output has h's dtype and stays within
    bf16's rounding of the full forward's (a step left in bf16 throughout, or a term lost, is not)."""
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=64, n_head=4, reduced_dim=8, lags=PAPER_LAGS, **variant)
    mixer = with_biases(GrassmannMixer(cfg, cfg.lags))
    h = torch.randn(2, 24, 64)
    with torch.no_grad():
        full = mixer(h)  # float32
        if mode == 'bf16_weights':
            mixer, h = mixer.to(torch.bfloat16), h.to(torch.bfloat16)
        cache = {}
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=mode == 'autocast'):
            steps = torch.cat([mixer(h[:, t:t + 1], cache=cache) for t in range(24)], dim=1)
    assert steps.dtype == h.dtype and cache['z'].dtype == torch.float32
    torch.testing.assert_close(steps.float(), full, rtol=0.05, atol=0.05 * full.abs().max().item())


@pytest.mark.parametrize('partners, z_conv, kept', [('none', 0, 16), ('ema', 0, 16 + 3), ('selective', 0, 16 + 3), ('none', 4, 16 + 3)])
def test_grassmann_decoding_state_does_not_grow(partners, z_conv, kept):
    """A layer keeps the ring of max(lags) = 16 reduced vectors, with partners their K = 3 summaries, and
    with a convolution of width 4 the last 3 vectors z before it."""
    model = tiny(pos_emb=False, lags=PAPER_LAGS, partners=partners, z_conv=z_conv)
    cache = model.new_cache()
    sizes = []
    for n in (1, 15, 300):
        model(torch.randint(0, 50, (1, n)), cache=cache)
        sizes.append(sum(t.numel() for layer in cache['layers'] for t in layer.values() if torch.is_tensor(t)))
    assert sizes[0] == sizes[1] == sizes[2] == 2 * kept * 8  # 2 layers x kept x reduced_dim


@pytest.mark.parametrize('variant', VARIANTS[:3] + PARTNERS)
def test_grassmann_decoding_compiles_once_for_every_position(variant):
    """Under torch.compile (dynamo with a counting backend: no compiler needed) the decoding step is two
    graphs, the first position's and every later one's: what depends on the position (the number of
    valid lags, the learned weights' floor) is read from tables indexed by it, not from Python values,
    which would make a graph per position up to max(lags). And the graphs give eager's logits."""
    import torch._dynamo
    from torch._dynamo.testing import CompileCounter
    torch.manual_seed(0)
    model = tiny(pos_emb=False, lags=PAPER_LAGS, **variant)
    idx = torch.randint(0, 50, (1, 30))
    counter = CompileCounter()
    torch._dynamo.reset()
    try:
        compiled, cache = torch.compile(model, backend=counter, dynamic=True), model.new_cache()
        with torch.no_grad():
            steps = torch.cat([compiled(idx[:, t:t + 1], cache=cache)[0] for t in range(30)], dim=1)
    finally:
        torch._dynamo.reset()
    assert counter.frame_count == 2
    torch.testing.assert_close(steps, all_logits(model, idx), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('mixer', MIXERS)
@pytest.mark.parametrize('pos_emb', (True, False))
def test_incremental_generate_samples_what_recompute_samples(mixer, pos_emb):
    model = tiny(mixer=mixer, pos_emb=pos_emb, block_size=16)
    prompt = torch.randint(0, 50, (2, 5))
    out = [model.generate(prompt, 30, top_k=1, incremental=inc) for inc in (True, False)]  # past block_size
    assert torch.equal(out[0], out[1]) and out[0].shape == (2, 35)


def test_forward_without_positions_takes_any_length():
    model = tiny(pos_emb=False, block_size=8)
    assert 'wpe' not in model.transformer and all_logits(model, torch.zeros(1, 50, dtype=torch.long)).shape == (1, 50, 50)
    with pytest.raises(ValueError, match='block_size=8'):
        tiny(block_size=8)(torch.zeros(1, 5, dtype=torch.long), cache={'pos': 5, 'layers': [{}, {}]})

# -----------------------------------------------------------------------------
# the block flows and the skeleton, written out from the spec (GRASSMANN.md) with plain operations


def spec_attention(attn, x):
    """Causal multi-head attention by hand: per head, softmax(q kᵀ / √hs + causal mask) v; heads concatenated."""
    B, T, C = x.shape
    nh = attn.n_head
    q, k, v = F.linear(x, attn.c_attn.weight, attn.c_attn.bias).split(C, dim=-1)
    heads = []
    for i in range(nh):
        s = slice(i * C // nh, (i + 1) * C // nh)
        scores = q[..., s] @ k[..., s].transpose(1, 2) / math.sqrt(C // nh)  # (B, T, T)
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf'))  # t sees 0..t
        heads.append(torch.softmax(scores, dim=-1) @ v[..., s])
    return F.linear(torch.cat(heads, dim=-1), attn.c_proj.weight, attn.c_proj.bias)


def spec_mixer_of(block, x):
    return spec_attention(block.mixer, x) if isinstance(block.mixer, CausalSelfAttention) else spec_mixer(block.mixer, x)


def layer_norm(ln, x):
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def spec_block(block, x, norm, mixer):
    """The spec's block flows, dropout off; returns the output and what each Dropout must receive."""
    ffn = lambda u: F.linear(F.gelu(F.linear(u, block.mlp.c_fc.weight, block.mlp.c_fc.bias)), block.mlp.c_proj.weight, block.mlp.c_proj.bias)
    if norm == 'pre':  # x = x + Drop(Mixer(LN1 x)); x = x + Drop(FFN(LN2 x))
        m = spec_mixer_of(block, layer_norm(block.ln_1, x))
        x = x + m
        f = ffn(layer_norm(block.ln_2, x))
        return x + f, [m, f]
    if mixer == 'grassmann':  # x = Drop(LN1(h_mix(x))), no identity residual; x = LN2(x + Drop(FFN x))
        m = layer_norm(block.ln_1, spec_mixer_of(block, x))
        x = m
    else:  # x = LN1(x + Drop(Attn x)); x = LN2(x + Drop(FFN x))
        m = spec_mixer_of(block, x)
        x = layer_norm(block.ln_1, x + m)
    f = ffn(x)
    return layer_norm(block.ln_2, x + f), [m, f]


def randomised(model):
    """Weights far from the init (LayerNorm affines included), so that every term of a flow shows."""
    torch.manual_seed(3)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return model.double()


@pytest.mark.parametrize('mixer', MIXERS)
@pytest.mark.parametrize('norm', NORMS)
def test_block_flows_match_the_spec_written_out(mixer, norm):
    model = randomised(tiny(mixer=mixer, norm=norm, lags=(1, 2, 4)))
    block = model.transformer.h[0]
    received = []
    block.drop = type('Recorder', (torch.nn.Module,), {'forward': lambda self, t: received.append(t) or t})()
    x = torch.randn(2, 12, 32, dtype=torch.float64)
    expected, dropped = spec_block(block, x, norm, mixer)
    torch.testing.assert_close(block(x), expected)
    # dropout sits where the spec puts it, and nowhere else: what each Dropout receives, in order
    assert len(received) == len(dropped)
    for got, want in zip(received, dropped):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize('mixer', MIXERS)
@pytest.mark.parametrize('norm', NORMS)
def test_skeleton_matches_the_spec_written_out(mixer, norm):
    model = randomised(tiny(mixer=mixer, norm=norm, lags=(1, 2, 4)))
    idx = torch.randint(0, 50, (2, 12))
    x = model.transformer.wte.weight[idx] + model.transformer.wpe.weight[:12]  # token + learned position
    for block in model.transformer.h:
        x = spec_block(block, x, norm, mixer)[0]
    logits = layer_norm(model.transformer.ln_f, x) @ model.transformer.wte.weight.T  # final LN, tied head
    torch.testing.assert_close(all_logits(model, idx), logits)
    torch.testing.assert_close(model(idx)[0][:, 0], logits[:, -1])  # without targets: the last position only


def test_plucker_floor_is_one_millionth():
    """p̂ = p / max(‖p‖, 1e-6): a plane of area 1e-5 is still normalised to unit length, one of 1e-7 is not."""
    cfg = GPTConfig(n_embd=4, n_head=1, reduced_dim=2, lags=(1,))
    mixer = GrassmannMixer(cfg, (1,)).double()
    for area, norm in ((1e-5, 1.0), (1e-7, 0.1)):
        z = torch.tensor([[1.0, 0.0], [0.0, area]], dtype=torch.float64).view(1, 2, 1, 2)  # ‖z_1 ∧ z_0‖ = area
        pbar = plucker_mean(mixer, z)  # (1, 2, 1): position 0 has no lag, position 1 the one plane
        assert pbar[0, 0].abs().item() == 0.0
        assert abs(pbar[0, 1]).item() == pytest.approx(norm, rel=1e-9)
        assert reference_pairs(mixer, z)[0, 1].abs().item() == pytest.approx(norm, rel=1e-9)

# -----------------------------------------------------------------------------
# stage 5: the controls (GRASSMANN.md, "Stage-5 controls")


def spec_windowed_attention(attn, x, window):
    """Attention written out with a loop over positions: position t reads the keys max(0, t - W) .. t
    through a softmax over those keys alone (every key 0 .. t without a window)."""
    B, T, C = x.shape
    nh, hs = attn.n_head, C // attn.n_head
    q, k, v = F.linear(x, attn.c_attn.weight, attn.c_attn.bias).split(C, dim=-1)
    out = torch.empty_like(x)
    for t in range(T):
        first = max(0, t - window) if window else 0
        for i in range(nh):
            s = slice(i * hs, (i + 1) * hs)
            scores = torch.einsum('bc,bjc->bj', q[:, t, s], k[:, first:t + 1, s]) / math.sqrt(hs)  # (B, keys)
            out[:, t, s] = torch.einsum('bj,bjc->bc', torch.softmax(scores, dim=-1), v[:, first:t + 1, s])
    return F.linear(out, attn.c_proj.weight, attn.c_proj.bias)


@pytest.mark.parametrize('window', (1, 5, 16))
def test_windowed_attention_matches_the_masked_softmax_written_out(window):
    torch.manual_seed(0)
    attn = with_biases(CausalSelfAttention(GPTConfig(n_embd=32, n_head=4, attn_window=window))).double()
    x = torch.randn(2, 24, 32, dtype=torch.float64, requires_grad=True)
    expected = spec_windowed_attention(attn, x, window)
    torch.testing.assert_close(attn(x), expected)
    upstream = torch.randn_like(expected)
    fast = torch.autograd.grad((attn(x) * upstream).sum(), [x, *attn.parameters()])
    spec = torch.autograd.grad((expected * upstream).sum(), [x, *attn.parameters()])
    for f, s in zip(fast, spec):
        torch.testing.assert_close(f, s)
    full = spec_windowed_attention(attn, x, 0)
    assert not torch.allclose(expected, full)  # the window must cut something, or the test says nothing


def test_a_window_as_long_as_the_sequence_is_full_attention():
    torch.manual_seed(0)
    full = tiny(mixer='attention')
    windowed = tiny(mixer='attention', attn_window=40)
    windowed.load_state_dict(full.state_dict())
    idx = torch.randint(0, 50, (2, 40))
    torch.testing.assert_close(all_logits(windowed, idx), all_logits(full, idx))
    assert full.num_params() == windowed.num_params()


def test_windowed_decoding_keeps_the_last_window_of_keys_and_values():
    torch.manual_seed(0)
    model = tiny(mixer='attention', attn_window=6, pos_emb=False).double()
    idx = torch.randint(0, 50, (1, 30))
    full = all_logits(model, idx)
    cache, steps, kept = model.new_cache(), [], []
    for t in range(30):
        steps.append(model(idx[:, t:t + 1], cache=cache)[0])
        kept.append(cache['layers'][0]['kv'].size(3))
    torch.testing.assert_close(torch.cat(steps, dim=1), full)
    assert kept == [min(t + 1, 6) for t in range(30)]  # W entries past W tokens, as the Grassmann ring's max(lags)


@pytest.mark.parametrize('variant, total', [
    (dict(mixer='attention', attn_window=16), 12_585_472),  # a window has no parameters
    # the sub4 arm (12,641,188) without normalisation: the same parameters
    (dict(pairing='unnormalised', n_subspaces=4, reduced_dim=16, lag_weights='learned', norm='pre'), 12_641_188),
    # linear pairs at r = 45: d·H·r + H·r + 2·H·r·d + d = 138,676 per layer against the wedge's 139,584
    (dict(pairing='linear', n_subspaces=4, reduced_dim=45, lag_weights='learned', norm='pre'), 12_635_740),
])
def test_control_parameter_counts_match_the_spec(variant, total):
    model = GPT(GPTConfig(vocab_size=30522, **{'mixer': 'grassmann', **variant}))
    assert model.num_params() == total
    if variant.get('pairing') == 'linear':
        mixer = model.transformer.h[0].mixer
        assert sum(p.numel() for m in (mixer.reduce, mixer.project) for p in m.parameters()) == 138_676


@pytest.mark.parametrize('variant, total', [
    # the sub4 arm with unit vectors: the same parameters
    (dict(pairing='unit'), 12_641_188),
    # the unnormalised sub4 arm with an RMS norm: a gain per subspace and coordinate, H·C(r,2) = 480 per layer
    (dict(pairing='unnormalised', p_norm='rms'), 12_641_188 + 6 * 480),
])
def test_other_normalisation_parameter_counts_match_the_spec(variant, total):
    sub4 = dict(n_subspaces=4, reduced_dim=16, lag_weights='learned', norm='pre')
    model = GPT(GPTConfig(vocab_size=30522, **sub4, **variant))
    assert model.num_params() == total
    if variant.get('p_norm') == 'rms':  # γ starts at 1 and takes no weight decay (a gain, like LayerNorm's)
        gains = [m.mixer.p_gain for m in model.transformer.h]
        assert all(torch.equal(g, torch.ones(480)) for g in gains)
        groups = model.configure_optimizers(0.01, 1e-3, (0.9, 0.999), 'cpu').param_groups
        undecayed = {id(p) for g in groups if g['weight_decay'] == 0 for p in g['params']}
        assert all(id(g) in undecayed for g in gains)


def test_other_normalisations_are_refused_where_there_is_nothing_to_normalise():
    for kw, what in ((dict(mixer='attention'), 'attention'), (dict(pairing='linear'), 'linear pairs')):
        with pytest.raises(ValueError, match=f"p_norm='rms' normalises the Grassmann mixer's Plücker coordinates, which {what}"):
            GPTConfig(p_norm='rms', **kw)


def test_unit_pairs_drop_the_lengths_and_keep_the_angle():
    """GRASSMANN.md: with unit vectors each pair's Plücker vector has norm |sin θ|. Scaling every z_t by its
    own factor changes nothing for unit pairs and changes the unnormalised pairs; one lag (mean over one
    term) gives p̄_t = ẑ_t ∧ ẑ_{t-1}, whose norm is the sine of the angle between z_t and z_{t-1}."""
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=8, n_head=1, reduced_dim=8, lags=(1,), bias=False, pairing='unit')
    unit = GrassmannMixer(cfg, cfg.lags).double()
    unnormalised = GrassmannMixer(GPTConfig(**{**cfg.__dict__, 'pairing': 'unnormalised'}), cfg.lags).double()
    unnormalised.load_state_dict(unit.state_dict())
    h = torch.randn(1, 6, 8, dtype=torch.float64)
    z = unit.reduce(h).view(1, 6, 1, 8)
    p = plucker_mean(unit, z).view(6, -1)
    cos = torch.nn.functional.cosine_similarity(z[0, 1:, 0], z[0, :-1, 0], dim=-1)
    torch.testing.assert_close(p[1:].norm(dim=-1), (1 - cos ** 2).sqrt())
    scales = torch.tensor([1.0, 3.0, 0.5, 2.0, 7.0, 0.25], dtype=torch.float64).view(1, 6, 1, 1)
    torch.testing.assert_close(plucker_mean(unit, z * scales), plucker_mean(unit, z))
    assert not torch.allclose(plucker_mean(unnormalised, z * scales), plucker_mean(unnormalised, z))


def test_the_pairings_differ_only_in_step_4_and_in_what_step_6_reads():
    """With the same weights, unnormalised pairs are the wedge's before step 4: equal where every plane
    already has unit area (here: z_t orthonormal to every earlier z), different elsewhere."""
    cfg = GPTConfig(n_embd=8, n_head=1, reduced_dim=8, lags=(1, 2), bias=False)
    wedge, unnormalised = GrassmannMixer(cfg, cfg.lags).double(), GrassmannMixer(GPTConfig(**{**cfg.__dict__, 'pairing': 'unnormalised'}), cfg.lags).double()
    unnormalised.load_state_dict(wedge.state_dict())
    with torch.no_grad():
        wedge.reduce.weight.copy_(torch.eye(8, dtype=torch.float64))
        unnormalised.reduce.weight.copy_(torch.eye(8, dtype=torch.float64))
    h = torch.eye(8, dtype=torch.float64)[:5].unsqueeze(0)  # z_t = e_t: every pair spans a unit square
    torch.testing.assert_close(unnormalised(h), wedge(h))
    h = h * torch.tensor([1.0, 2.0, 3.0, 0.5, 4.0], dtype=torch.float64).view(1, 5, 1)  # areas 2, 6, 1.5, ...
    assert not torch.allclose(unnormalised(h), wedge(h))


@pytest.mark.parametrize('variant', [dict(), dict(lag_weights='learned'), dict(pairing='unnormalised'), dict(pairing='unit'),
                                     dict(pairing='unnormalised', p_norm='rms')])  # an RMS norm keeps p̄ = 0 at 0
@pytest.mark.parametrize('T', (6, 40))  # the Plücker-vector path and the outer-product path of step 6
def test_where_no_lag_is_valid_g_is_b_plucker(variant, T):
    """GRASSMANN.md step 6, decided: a position with no valid lag (every t < 4 in a layer whose one lag
    is 4) gets g_t = b_plü, not the 0 of projecting each lag and zero-padding; the gate then reads it."""
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=16, n_head=4, reduced_dim=4, lags=(1, 2, 4, 8), lag_schedule='layer', **variant)
    mixer = with_biases(GrassmannMixer(cfg, cfg.layer_lags(2)).double())
    assert mixer.lags == (4,)
    h = torch.randn(3, T, 16, dtype=torch.float64)
    b = mixer.project.bias.expand(3, 4, 16)
    alpha = torch.sigmoid(mixer.gate(torch.cat([h[:, :4], b], dim=-1)))
    expected = alpha * h[:, :4] + (1 - alpha) * b
    cache = {}
    decoded = torch.cat([mixer(h[:, t:t + 1], cache=cache) for t in range(4)], dim=1)
    for y in (mixer(h)[:, :4], mixer(h, reference=True)[:, :4], decoded):
        torch.testing.assert_close(y, expected)
    alpha = torch.sigmoid(mixer.gate(torch.cat([h[:, 4:5], b[:, :1]], dim=-1)))  # from t = 4 on the plane counts
    assert not torch.allclose(mixer(h)[:, 4:5], alpha * h[:, 4:5] + (1 - alpha) * b[:, :1])

# -----------------------------------------------------------------------------
# stage 6: a hybrid (attn_layers) and a short convolution of the reduced vectors (z_conv)


def loss_and_grads(mixer, h, out):
    """Values, and the gradients of a fixed weighting of them with respect to h and every parameter."""
    loss = (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum()
    return [out] + list(torch.autograd.grad(loss, [h] + list(mixer.parameters()), allow_unused=True))


@pytest.mark.parametrize('variant', CONV)
def test_z_conv_matches_the_loop_over_positions_and_taps(variant):
    """The mixer with z_conv against spec_mixer, which convolves z with a loop over positions and taps
    (float64, values and every gradient), with partners, learned lag weights and each pairing."""
    torch.manual_seed(0)
    cfg = GPTConfig(n_embd=32, n_head=4, reduced_dim=8, lags=PAPER_LAGS, **variant)
    mixer = with_biases(GrassmannMixer(cfg, cfg.lags).double())
    h = torch.randn(2, 24, 32, dtype=torch.float64, requires_grad=True)
    spec = spec_mixer(mixer, h, cfg.n_subspaces, cfg.lag_weights == 'learned', cfg.pairing)
    for fast, want in zip(loss_and_grads(mixer, h, mixer(h)), loss_and_grads(mixer, h, spec)):
        torch.testing.assert_close(fast, want)
    assert mixer.conv_taps.shape == (cfg.z_conv, cfg.n_subspaces * 8)
    with torch.no_grad():  # the taps must matter, or the test says nothing
        mixer.conv_taps.add_(0.5)
    assert not torch.allclose(mixer(h), spec)


@pytest.mark.parametrize('variant', [dict(), dict(partners='selective', n_subspaces=2, lag_weights='learned'), dict(pairing='linear')])
def test_z_conv_starts_as_the_identity(variant):
    """At init (c_0 = 1, the other taps and b_c 0) the arm computes what the arm without it computes."""
    torch.manual_seed(0)
    plain = GPT(GPTConfig(**dict(block_size=40, vocab_size=50, n_layer=2, n_head=4, n_embd=32, reduced_dim=8, **variant))).double()
    torch.manual_seed(0)
    conv = GPT(GPTConfig(**dict(block_size=40, vocab_size=50, n_layer=2, n_head=4, n_embd=32, reduced_dim=8, z_conv=4, **variant))).double()
    taps = conv.transformer.h[0].mixer.conv_taps
    assert torch.equal(taps[0], torch.ones_like(taps[0])) and not taps[1:].any() and not conv.transformer.h[0].mixer.conv_bias.any()
    idx = torch.randint(0, 50, (2, 40))
    torch.testing.assert_close(all_logits(conv.eval(), idx), all_logits(plain.eval(), idx), rtol=0, atol=1e-12)


def test_z_conv_taps_take_no_weight_decay():
    model = tiny(z_conv=4)
    decay, no_decay = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), 'cpu').param_groups
    mixer = model.transformer.h[0].mixer
    assert {id(mixer.conv_taps), id(mixer.conv_bias)} <= {id(p) for p in no_decay['params']}
    assert id(mixer.reduce.weight) in {id(p) for p in decay['params']}
    assert len(decay['params']) + len(no_decay['params']) == len(list(model.parameters()))


def test_z_conv_reaches_exactly_k_minus_1_past_each_lag():
    """One layer, the one lag 4, a convolution of width 2: z̃_t reads z_t and z_{t-1}, z̃_{t-4} reads z_{t-4}
    and z_{t-5}: position t sees t-1, t-4 and t-5, and nothing after t."""
    torch.manual_seed(0)
    model = tiny(n_layer=1, lags=(4,), z_conv=2)
    with_biases(model.transformer.h[0].mixer)
    assert positions_seen(model, t=30) == {1, 4, 5}
    assert positions_seen(tiny(n_layer=1, lags=(4,)), t=30) == {4}


def test_a_hybrid_has_attention_where_listed_and_its_own_lags_elsewhere():
    torch.manual_seed(0)
    model = tiny(n_layer=4, attn_layers=(1,), lag_schedule='layer', lags=PAPER_LAGS, norm='post')
    kinds = [type(b.mixer).__name__ for b in model.transformer.h]
    assert kinds == ['GrassmannMixer', 'CausalSelfAttention', 'GrassmannMixer', 'GrassmannMixer']
    assert [b.mixer.lags for b in model.transformer.h if b.grassmann] == [(1,), (4,), (8,)]
    # the attention block keeps attention's post-norm flow (a residual around it), the others the paper's
    assert [b.grassmann for b in model.transformer.h] == [True, False, True, True]
    assert positions_seen(model, t=30) == set(range(1, 31))  # attention reads the whole past
    assert_never_reads_the_future(model)


@pytest.mark.parametrize('variant, total', [
    # the sub4 arm (12,641,188) with z_conv = 4: (K + 1)·H·r = 320 per layer
    (dict(z_conv=4), 12_641_188 + 6 * 320),
    # block 3 of the sub4 arm as attention: its mixer 263,168 in place of 272,454 (W_red, W_plü, W_gate, W_lag)
    (dict(attn_layers=(3,)), 12_641_188 - 272_454 + 263_168),
    (dict(attn_layers=(3,), z_conv=4), 12_641_188 - 272_454 + 263_168 + 5 * 320),
])
def test_stage6_parameter_counts_match_the_spec(variant, total):
    sub4 = dict(n_subspaces=4, reduced_dim=16, lag_weights='learned', norm='pre')
    model = GPT(GPTConfig(vocab_size=30522, **sub4, **variant))
    assert model.num_params() == total


def test_attn_layers_with_attention_is_refused():
    with pytest.raises(ValueError, match="attn_layers=.1,. makes a Grassmann model a hybrid"):
        GPTConfig(mixer='attention', attn_layers=(1,))
    with pytest.raises(ValueError, match='z_conv=4'):
        GPTConfig(mixer='attention', z_conv=4)
