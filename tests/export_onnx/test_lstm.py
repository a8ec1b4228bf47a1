"""The torch LSTM layers against a NumPy transcription of TensorFlow's BasicLSTMCell."""
import numpy as np
import pytest
import torch

from export_onnx.lstm import BidirectionalLSTM, Dense, StackedLSTM, TFLSTMCell, set_fused


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def tf_basic_lstm_cell(x, c, h, kernel, bias, forget_bias=1.0):
    """tf.nn.rnn_cell.BasicLSTMCell.call, state_is_tuple=True, float64."""
    gates = np.concatenate([x, h], axis=1) @ kernel + bias
    i, j, f, o = np.split(gates, 4, axis=1)
    new_c = c * _sigmoid(f + forget_bias) + _sigmoid(i) * np.tanh(j)
    new_h = np.tanh(new_c) * _sigmoid(o)
    return new_c, new_h


def _randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _np(t):
    return t.detach().double().numpy()


def test_parameters_are_tf_layout_with_stable_names():
    lstm = StackedLSTM(7, 5, 2)
    shapes = {k: tuple(v.shape) for k, v in lstm.state_dict().items()}
    assert shapes == {"cells.0.kernel": (12, 20), "cells.0.bias": (20,),
                      "cells.1.kernel": (10, 20), "cells.1.bias": (20,)}
    assert {k: tuple(v.shape) for k, v in Dense(3, 4).state_dict().items()} == {"kernel": (3, 4), "bias": (4,)}


def test_cell_step_matches_tf_reference():
    cell = TFLSTMCell(6, 4)
    _randomize(cell, 0)
    rng = np.random.default_rng(0)
    x, c, h = (rng.normal(size=s).astype(np.float32) for s in [(3, 6), (3, 4), (3, 4)])
    c1, h1 = cell.step(*(torch.from_numpy(a) for a in (x, c, h)))
    rc, rh = tf_basic_lstm_cell(x.astype(np.float64), c, h, _np(cell.kernel), _np(cell.bias))
    np.testing.assert_allclose(c1.detach().numpy(), rc, atol=1e-5)
    np.testing.assert_allclose(h1.detach().numpy(), rh, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_stacked_sequence_matches_tf_reference(fused):
    layers, units, inp, b, t = 2, 5, 7, 3, 9
    lstm = StackedLSTM(inp, units, layers)
    _randomize(lstm, 1)
    set_fused(lstm, fused)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(b, t, inp)).astype(np.float32)
    c0 = rng.normal(size=(layers, b, units)).astype(np.float32)
    h0 = rng.normal(size=(layers, b, units)).astype(np.float32)
    out, c, h = lstm(torch.from_numpy(x), torch.from_numpy(c0), torch.from_numpy(h0))

    rc, rh = [c0[l].astype(np.float64) for l in range(layers)], [h0[l].astype(np.float64) for l in range(layers)]
    ref_out = []
    for s in range(t):
        inp_s = x[:, s].astype(np.float64)
        for l, cell in enumerate(lstm.cells):
            rc[l], rh[l] = tf_basic_lstm_cell(inp_s, rc[l], rh[l], _np(cell.kernel), _np(cell.bias))
            inp_s = rh[l]
        ref_out.append(inp_s)
    np.testing.assert_allclose(out.detach().numpy(), np.stack(ref_out, 1), atol=1e-5)
    np.testing.assert_allclose(c.detach().numpy(), np.stack(rc), atol=1e-5)
    np.testing.assert_allclose(h.detach().numpy(), np.stack(rh), atol=1e-5)


def test_fused_and_stepwise_gradients_agree():
    lstm = StackedLSTM(4, 3, 2)
    _randomize(lstm, 2)
    x = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(3))
    c0, h0 = lstm.zero_state(2, x)
    grads = []
    for fused in (True, False):
        lstm.zero_grad()
        set_fused(lstm, fused)
        out, c, h = lstm(x, c0, h0)
        (out.square().sum() + c.sum()).backward()
        grads.append([p.grad.clone() for p in lstm.parameters()])
    for a, b in zip(*grads):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_bidirectional_final_outputs_match_tf_reference():
    bi = BidirectionalLSTM(5, 4)
    _randomize(bi, 4)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 7, 5)).astype(np.float32)
    got = bi(torch.from_numpy(x)).detach().numpy()
    z = np.zeros((3, 4))
    cf, hf, cb, hb = z, z, z, z
    for s in range(7):
        cf, hf = tf_basic_lstm_cell(x[:, s].astype(np.float64), cf, hf, _np(bi.fw.kernel), _np(bi.fw.bias))
        cb, hb = tf_basic_lstm_cell(x[:, 6 - s].astype(np.float64), cb, hb, _np(bi.bw.kernel), _np(bi.bw.bias))
    np.testing.assert_allclose(got, np.concatenate([hf, hb], 1), atol=1e-5)
    set_fused(bi, False)
    np.testing.assert_allclose(bi(torch.from_numpy(x)).detach().numpy(), got, atol=1e-5)
