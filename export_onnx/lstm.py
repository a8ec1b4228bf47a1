"""LSTM layers with TensorFlow `BasicLSTMCell` semantics, parameters kept in TF layout.

A TF cell owns one fused `kernel` of shape `(input + units, 4 * units)` applied to `[x, h]`, and a
`bias` of shape `(4 * units,)`. The four gate blocks are ordered **i, j, f, o** (input gate, candidate,
forget gate, output gate) and a constant forget bias of 1.0 is added inside the cell:

    i, j, f, o = split([x, h] @ kernel + bias, 4)
    c' = c * sigmoid(f + 1.0) + sigmoid(i) * tanh(j)
    h' = tanh(c') * sigmoid(o)

Magenta's TF models (`LSTMBlockCell`, same gate order and forget bias) and magenta.js
(`tf.basicLSTMCell`) use exactly this, so checkpoints load by name: `cells.<layer>.kernel` /
`cells.<layer>.bias` correspond to `.../multi_rnn_cell/cell_<layer>/lstm_cell/{kernel,bias}`.

Sequences run through torch's fused LSTM (`torch.lstm`, the op behind `nn.LSTM`) with weights
*derived* on the fly from the TF parameters (transpose, reorder i,j,f,o -> i,f,g,o, forget bias
folded into the bias), so gradients flow back to the TF-layout parameters. `step` is the plain
tensor-op cell used for one decoder step (ONNX export).
"""
from __future__ import annotations

import math

import torch
from torch import nn

FORGET_BIAS = 1.0


def _fused_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the fused op runs in: autocast's lower precision when it is on for x's device
    (autocast does not cover torch.lstm's flat weight list, so inputs, states and weights are cast
    together here), x's own dtype otherwise."""
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return x.dtype


def glorot_uniform_(t: torch.Tensor) -> torch.Tensor:
    """TF's default `glorot_uniform` for a (fan_in, fan_out) kernel."""
    fan_in, fan_out = t.shape[0], t.shape[1]
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return t.uniform_(-limit, limit)


class Dense(nn.Module):
    """TF `tf.layers.dense`: `y = x @ kernel + bias`, kernel stored (in, out)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.kernel = nn.Parameter(glorot_uniform_(torch.empty(in_features, out_features)))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.kernel) + self.bias


class TFLSTMCell(nn.Module):
    """One BasicLSTMCell: parameters `kernel (input+units, 4*units)`, `bias (4*units)`."""

    def __init__(self, input_size: int, units: int):
        super().__init__()
        self.input_size, self.units = input_size, units
        self.kernel = nn.Parameter(glorot_uniform_(torch.empty(input_size + units, 4 * units)))
        self.bias = nn.Parameter(torch.zeros(4 * units))

    def step(self, x: torch.Tensor, c: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, input), c/h (B, units) -> (c', h')."""
        gates = torch.matmul(torch.cat([x, h], dim=-1), self.kernel) + self.bias
        i, j, f, o = torch.chunk(gates, 4, dim=-1)
        c_new = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * torch.tanh(j)
        h_new = torch.tanh(c_new) * torch.sigmoid(o)
        return c_new, h_new

    def torch_weights(self) -> list[torch.Tensor]:
        """[w_ih (4H, I), w_hh (4H, H), b_ih (4H), b_hh (4H)] in torch's gate order i, f, g, o."""
        u = self.units
        k = self.kernel
        i, j, f, o = k[:, :u], k[:, u:2 * u], k[:, 2 * u:3 * u], k[:, 3 * u:]
        w = torch.cat([i, f, j, o], dim=1).t()  # (4H, I+H)
        b = self.bias
        bi, bj, bf, bo = b[:u], b[u:2 * u], b[2 * u:3 * u], b[3 * u:]
        b_ih = torch.cat([bi, bf + FORGET_BIAS, bj, bo])
        w_ih, w_hh = w[:, :self.input_size], w[:, self.input_size:]
        return [w_ih.contiguous(), w_hh.contiguous(), b_ih, torch.zeros_like(b_ih)]


class StackedLSTM(nn.Module):
    """A MultiRNNCell of TF LSTM cells (layer l feeds layer l+1). States are (layers, B, units)."""

    def __init__(self, input_size: int, units: int, layers: int):
        super().__init__()
        self.input_size, self.units, self.layers = input_size, units, layers
        self.fused = True
        self.cells = nn.ModuleList(
            [TFLSTMCell(input_size if l == 0 else units, units) for l in range(layers)])

    def zero_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = like.new_zeros(self.layers, batch, self.units)
        return z, z.clone()

    def forward(self, x: torch.Tensor, c: torch.Tensor, h: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fused sequence: x (B, T, input), c/h (layers, B, units) -> (outputs (B, T, units), c, h)."""
        if not self.fused:
            return self.forward_stepwise(x, c, h)
        dt = _fused_dtype(x)
        params = [p.to(dt) for cell in self.cells for p in cell.torch_weights()]
        out, h_n, c_n = torch.lstm(x.to(dt), (h.to(dt), c.to(dt)), params, True, self.layers, 0.0,
                                   self.training, False, True)
        return out, c_n, h_n

    def step(self, x: torch.Tensor, c: torch.Tensor, h: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step with plain tensor ops: x (B, input) -> (top output (B, units), c, h)."""
        cs, hs = [], []
        inp = x
        for l, cell in enumerate(self.cells):
            cl, hl = cell.step(inp, c[l], h[l])
            cs.append(cl)
            hs.append(hl)
            inp = hl
        return inp, torch.stack(cs), torch.stack(hs)

    def forward_stepwise(self, x: torch.Tensor, c: torch.Tensor, h: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The same as `forward`, one `step` at a time (reference / tests)."""
        outs = []
        for t in range(x.shape[1]):
            o, c, h = self.step(x[:, t], c, h)
            outs.append(o)
        return torch.stack(outs, dim=1), c, h


class BidirectionalLSTM(nn.Module):
    """One bidirectional layer (`fw`, `bw` TF cells) over full-length sequences, zero initial state."""

    def __init__(self, input_size: int, units: int):
        super().__init__()
        self.input_size, self.units = input_size, units
        self.fused = True
        self.fw = TFLSTMCell(input_size, units)
        self.bw = TFLSTMCell(input_size, units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, input) -> concat(final forward h, final backward h) (B, 2*units).

        The backward final output is the backward cell's state after reading x[T-1] .. x[0].
        """
        if not self.fused:
            return self.forward_stepwise(x)
        b = x.shape[0]
        dt = _fused_dtype(x)
        h0 = x.new_zeros(2, b, self.units, dtype=dt)
        params = [p.to(dt) for p in self.fw.torch_weights() + self.bw.torch_weights()]
        _, h_n, _ = torch.lstm(x.to(dt), (h0, h0), params, True, 1, 0.0, self.training, True, True)
        return torch.cat([h_n[0], h_n[1]], dim=-1)

    def forward_stepwise(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        cf = hf = cb = hb = x.new_zeros(b, self.units)
        for t in range(x.shape[1]):
            cf, hf = self.fw.step(x[:, t], cf, hf)
            cb, hb = self.bw.step(x[:, x.shape[1] - 1 - t], cb, hb)
        return torch.cat([hf, hb], dim=-1)


def set_fused(module: nn.Module, fused: bool) -> nn.Module:
    """Switch every LSTM under `module` between torch's fused op (training) and unrolled plain tensor
    ops (`fused=False`: the graph an ONNX exporter sees is only MatMul/Add/Sigmoid/Tanh/Mul)."""
    for m in module.modules():
        if isinstance(m, (StackedLSTM, BidirectionalLSTM)):
            m.fused = fused
    return module
