"""MusicVAE shapes, the export interface, parallel-vs-sequential decoding and scheduled sampling."""
import math

import numpy as np
import pytest
import torch

from export_onnx.configs import CONFIGS, ModelSize
from export_onnx.model import (LN2, MusicVAE, argmax_tokens, choose, kl_divergence, one_hot,
                               reconstruction_loss, sample_mask, shift_right, vae_loss, word_dropout)

TINY = ModelSize(enc_units=12, dec_units=10, dec_layers=2, z_size=6, cond_units=8, cond_layers=2,
                 emb_size=8, bar_enc_units=7)


def _model(name, seed=0):
    torch.manual_seed(seed)
    return MusicVAE(CONFIGS[name], TINY).eval()


def _tokens(model, b, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, n, (b, model.num_steps), generator=g) for n in model.num_classes], -1)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_shapes_and_interface(name):
    cfg = CONFIGS[name]
    m = _model(name)
    b = 3
    tracks = len(cfg.tracks)
    assert m.input_size == sum(m.num_classes) == cfg.codec.input_size
    tok = _tokens(m, b)
    x = m.one_hot(tok)
    assert x.shape == (b, cfg.num_steps, m.input_size)
    # every track segment of the input is a one-hot
    for a, e in zip(np.cumsum([0] + m.num_classes[:-1]), np.cumsum(m.num_classes)):
        assert torch.equal(x[..., a:e].sum(-1), torch.ones(b, cfg.num_steps))
    assert torch.equal(argmax_tokens(x, m.num_classes), tok)

    mu, sigma = m.encoder(x)
    assert mu.shape == sigma.shape == (b, TINY.z_size)
    assert (sigma > 0).all()
    logits, mu2, _ = m(tok, 0.0, torch.Generator().manual_seed(0))
    assert logits.shape == (b, cfg.num_steps, m.input_size)
    torch.testing.assert_close(mu2, mu)

    dec = m.decoder
    layers = TINY.dec_layers * (tracks if cfg.hierarchical else 1)
    if cfg.hierarchical:
        emb = dec.conductor(mu)
        assert emb.shape == (b, cfg.bars, TINY.cond_units)
        cond = emb[:, 0]
    else:
        assert not hasattr(dec, "conductor")
        cond = mu
    assert dec.cond_size == cond.shape[1]
    c, h = dec.init_state(cond)
    assert c.shape == h.shape == (layers, b, TINY.dec_units)
    assert dec.state_layers == layers
    lg, c2, h2 = dec.step(torch.zeros(b, m.input_size), cond, c, h)
    assert lg.shape == (b, m.input_size) and c2.shape == c.shape and h2.shape == h.shape

    if cfg.bars == 2:  # the 16-bar decodes are covered by test_free_decode_is_consistent_with_teacher_forcing
        rec = m.reconstruct(tok)
        assert rec.shape == (b, cfg.num_steps, tracks)
        for k, n in enumerate(m.num_classes):
            assert 0 <= int(rec[..., k].min()) and int(rec[..., k].max()) < n
    # reconstruction loss: one column per track, the masked segments sum to the flat CE
    r = reconstruction_loss(logits, tok, m.num_classes)
    assert r.shape == (b, tracks) and (r > 0).all()


def test_trio_hierarchical_core_decoders_see_only_their_track():
    m = _model("trio_16bar")
    assert len(m.decoder.cores) == 3
    b = 2
    cond = torch.randn(b, TINY.cond_units)
    c, h = m.decoder.init_state(cond)
    prev = torch.zeros(b, m.input_size)
    base, _, _ = m.decoder.step(prev, cond, c, h)
    bass = prev.clone()
    bass[:, m.num_classes[0] + 5] = 1.0  # a bass note-on
    lg, c2, _ = m.decoder.step(bass, cond, c, h)
    n0, n1 = m.num_classes[0], m.num_classes[0] + m.num_classes[1]
    torch.testing.assert_close(lg[:, :n0], base[:, :n0])        # lead unchanged
    torch.testing.assert_close(lg[:, n1:], base[:, n1:])        # drums unchanged
    assert not torch.allclose(lg[:, n0:n1], base[:, n0:n1])     # bass changed
    L = TINY.dec_layers
    # the state rows are stacked lead, bass, drums: only the bass rows moved
    assert torch.equal(c2[:L], m.decoder.step(prev, cond, c, h)[1][:L])
    assert not torch.allclose(c2[L:2 * L], m.decoder.step(prev, cond, c, h)[1][L:2 * L])


@pytest.mark.parametrize("name", ["mel_2bar", "mel_16bar", "trio_16bar", "trio_16bar_flat"])
def test_parallel_training_path_equals_sequential_step_path(name):
    """Teacher forced: the training path (hierarchical: all bars at once) == bar-by-bar step calls."""
    m = _model(name, 1)
    tok = _tokens(m, 2, 1)
    x = m.one_hot(tok)
    z = torch.randn(2, TINY.z_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        parallel = m.decoder(z, x, 0.0)
        sequential = m.decoder.teacher_forced_stepwise(z, x)
    torch.testing.assert_close(parallel, sequential, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["drums_2bar", "mel_16bar", "trio_16bar"])
def test_free_decode_is_consistent_with_teacher_forcing(name):
    """Argmax decoding fed back as teacher-forcing targets reproduces itself through the training path."""
    m = _model(name, 2)
    z = torch.randn(3, TINY.z_size, generator=torch.Generator().manual_seed(5)) * 2
    tokens, logits = m.decode_argmax(z, return_logits=True)
    assert tokens.shape == (3, m.num_steps, len(m.num_classes)) and logits.shape == (3, m.num_steps, m.input_size)
    for k, n in enumerate(m.num_classes):
        assert 0 <= int(tokens[..., k].min()) and int(tokens[..., k].max()) < n
    with torch.no_grad():
        tf_logits = m.decoder(z, m.one_hot(tokens), 0.0)
    torch.testing.assert_close(tf_logits, logits, atol=2e-5, rtol=1e-4)
    assert torch.equal(argmax_tokens(tf_logits, m.num_classes), tokens)


def _reference_scheduled_sampling(core, inputs, cond, p, seed):
    """Step-by-step scheduled sampling with the same random draws as LstmCoreDecoder.teacher_forced."""
    g = torch.Generator().manual_seed(seed)
    n, t_len, _ = inputs.shape
    mask = sample_mask(n, t_len, p, g)
    cut = set() if mask is None else set(torch.nonzero(mask.any(0)).flatten().tolist())
    c, h = core.init_state(cond)
    prev, outs = inputs[:, 0], []
    for t in range(t_len):
        if t in cut:
            sampled = choose(outs[-1], core.num_classes, 1.0, g)
            prev = torch.where(mask[:, t, None], sampled, inputs[:, t])
        elif t > 0:
            prev = inputs[:, t]
        lg, c, h = core.step(prev, cond, c, h)
        outs.append(lg)
    return torch.stack(outs, 1), mask


def _sampling_case():
    """A flat trio core, 4 shifted one-hot sequences of 24 steps and their conditioning."""
    m = _model("trio_16bar_flat", 3)
    tok = _tokens(m, 4, 3)[:, :24]
    cond = torch.randn(4, TINY.z_size, generator=torch.Generator().manual_seed(4))
    return m.decoder.core, shift_right(m.one_hot(tok)), cond


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_scheduled_sampling_matches_stepwise_reference(p):
    core, inputs, cond = _sampling_case()
    with torch.no_grad():
        ref, mask = _reference_scheduled_sampling(core, inputs, cond, p, seed=7)
        g = torch.Generator().manual_seed(7)
        got = core.teacher_forced(inputs, cond, sample_mask(4, 24, p, g), g, method="stepwise")
        teacher = core.teacher_forced(inputs, cond)
    torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-4)
    if p == 0.0:
        assert mask is None
        torch.testing.assert_close(got, teacher)
    else:
        assert not mask[:, 0].any()
        if p == 1.0:
            assert mask[:, 1:].all()
        assert not torch.allclose(got, teacher)


@pytest.mark.parametrize("p", [0.0, 0.4, 1.0])
def test_two_pass_scheduled_sampling(p):
    """Two-pass: pass 1 teacher forced without gradients, a token drawn from its output at every
    step, mixed into the inputs at the masked steps, pass 2 teacher forced on the mix. At p = 0 it is
    exactly the stepwise path (and plain teacher forcing); at p > 0 it equals that recipe computed by
    hand and differs from teacher forcing; gradients reach the weights through pass 2."""
    core, inputs, cond = _sampling_case()
    with torch.no_grad():
        g = torch.Generator().manual_seed(7)
        mask = sample_mask(4, 24, p, g)
        got = core.teacher_forced(inputs, cond, mask, g, method="two_pass")
        g2 = torch.Generator().manual_seed(7)
        mask2 = sample_mask(4, 24, p, g2)
        stepwise = core.teacher_forced(inputs, cond, mask2, g2, method="stepwise")
        teacher = core.teacher_forced(inputs, cond)
    if p == 0.0:
        assert mask is None
        assert torch.equal(got.detach(), stepwise) and torch.equal(got.detach(), teacher)
        return
    with torch.no_grad():   # the same recipe by hand, with the same random draws
        g3 = torch.Generator().manual_seed(7)
        mask3 = sample_mask(4, 24, p, g3)
        drawn = choose(teacher[:, :-1].reshape(-1, core.out_size), core.num_classes, 1.0, g3).reshape(4, 23, -1)
        mixed = inputs.clone()
        mixed[:, 1:][mask3[:, 1:]] = drawn[mask3[:, 1:]]
        by_hand = core.teacher_forced(mixed, cond)
    torch.testing.assert_close(got.detach(), by_hand)
    assert not torch.allclose(got.detach(), teacher)
    g4 = torch.Generator().manual_seed(7)
    with_grad = core.teacher_forced(inputs, cond, sample_mask(4, 24, p, g4), g4, method="two_pass")
    torch.testing.assert_close(with_grad.detach(), got)
    with_grad.sum().backward()
    assert core.lstm.cells[0].kernel.grad is not None and core.lstm.cells[0].kernel.grad.abs().sum() > 0


def test_word_dropout_zeroes_whole_previous_tokens():
    m = _model("mel_2bar", 1)
    tok = _tokens(m, 8, 1)
    x = shift_right(m.one_hot(tok))
    out = word_dropout(x, 0.5, torch.Generator().manual_seed(0))
    per_step = out.sum(-1)
    assert set(per_step.unique().tolist()) <= {0.0, 1.0}
    dropped = (x.sum(-1) == 1) & (per_step == 0)
    assert 0.3 < dropped.float().mean() / (x.sum(-1) == 1).float().mean() < 0.7
    assert torch.equal(word_dropout(x, 0.0, None), x)


def test_hierarchical_scheduled_sampling_keeps_bar_starts_teacher_forced():
    """Within-bar sampling: with p(sample) = 1 the first step of every bar still equals teacher forcing."""
    m = _model("mel_16bar", 4)
    tok = _tokens(m, 2, 4)
    z = torch.randn(2, TINY.z_size, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        sampled = m.decoder(z, m.one_hot(tok), 1.0,
                            torch.Generator().manual_seed(0))
        teacher = m.decoder(z, m.one_hot(tok), 0.0)
    starts = torch.arange(0, m.num_steps, 16)
    torch.testing.assert_close(sampled[:, starts], teacher[:, starts], atol=2e-5, rtol=1e-4)
    assert not torch.allclose(sampled[:, starts + 1], teacher[:, starts + 1])


def test_kl_and_free_bits_loss_by_hand():
    mu = torch.tensor([[1.0, 0.0]])
    sigma = torch.tensor([[1.0, 0.5]])
    # 0.5 * (mu^2 + sigma^2 - 1 - 2 ln sigma) summed: 0.5 + 0.5 * (0.25 - 1 + 2 ln 2)
    assert kl_divergence(mu, sigma).item() == pytest.approx(0.5 + 0.5 * (-0.75 + 2 * math.log(2)), rel=1e-6)
    r = torch.tensor([10.0, 20.0])
    kl = torch.tensor([5.0, 1.0])
    # free_bits = 2 bits = 2 ln 2 nats; example 2 is below it and costs nothing
    expected = 15.0 + 0.5 * ((5.0 - 2 * math.log(2)) + 0.0) / 2
    assert vae_loss(r, kl, beta=0.5, free_bits=2.0).item() == pytest.approx(expected, rel=1e-6)
    assert vae_loss(r, kl, beta=0.5, free_bits=0.0).item() == pytest.approx(15.0 + 0.5 * 3.0, rel=1e-6)
    assert LN2 == pytest.approx(math.log(2))


def test_reconstruction_loss_is_per_track_cross_entropy_summed_over_steps():
    nc = [3, 4]
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25, 0.1, 0.2, 0.3, 0.4],
                                      [0.2, 0.2, 0.6, 0.25, 0.25, 0.25, 0.25]]]))
    tok = torch.tensor([[[0, 3], [2, 1]]])
    r = reconstruction_loss(logits, tok, nc)
    torch.testing.assert_close(r, torch.tensor([[-math.log(0.5) - math.log(0.6),
                                                 -math.log(0.4) - math.log(0.25)]]))
    assert torch.equal(one_hot(tok, nc).sum(-1), torch.full((1, 2), 2.0))
