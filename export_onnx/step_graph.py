"""The decoder step graph written directly in ONNX (instead of tracing `decoder.step`).

Same contract as the traced graph (docs/architecture.md): inputs `prev (B, input_size)`,
`cond (B, cond_size)`, `state_c`, `state_h (L, B, U)`; outputs `logits (B, input_size)`,
`new_state_c`, `new_state_h (L, B, U)`; the same numbers within float32 rounding (the exporter's
parity check compares it with `decoder.step` in torch).

Why: one decoder step is a few small matrix products, so onnxruntime's per-node cost matters. The
traced `StackedLSTM.step` becomes ~60 nodes per core after optimisation (Slice/Gather to index the
stacked states, two Concats per layer, a 4-way Split and separate activations, Unsqueeze/Concat to
restack). Here each layer of each core is:

    x, h, c  -> Concat([x, h]) -> Gemm(fused TF kernel, bias with the forget bias folded in)
             -> Split [i f o | j] -> Sigmoid(i f o), Tanh(j) -> Split i, f, o
             -> c' = c * f + i * j ; h' = tanh(c') * o

with the kernel's gate columns reordered once at export (TF i, j, f, o -> i, f, o, j) so one Sigmoid
covers three gates. The states are read with one Gather per layer and written back with one Concat
+ Reshape per state tensor.

Layer 1 of each core does not multiply the previous token's one-hot by its kernel rows (a dense
`(classes, 4U)` read per step, 512 rows for the drums): it gathers the row of the hot class,

    rows = Gather(kernel[:classes], ArgMax(prev_k)) * ReduceMax(prev_k)     # all-zero prev -> 0

and adds it to `Gemm(concat([cond, h]), kernel[classes:], bias)`. This is exact for what the
contract allows in `prev`: per track segment a one-hot, or all zeros (the first step). Other values
(soft or multi-hot inputs) are not supported by the step graph.

The exporter also moves the conditioning out of the step (format_version 2): `decoder_init` outputs
`cond_proj = cond @ kernel[classes:classes + cond_size] + bias` for every core (`cond_projection`),
constant for a bar, and layer 1 computes `Gemm(h, kernel[classes + cond_size:], C=cond_proj_k)`
plus the gathered row: the step no longer reads the cond rows of the kernels at all.

Cores with the same LSTM weights (the trio chain's lead and bass are both mel_2bar's core:
`shared_groups`) run as one: their state rows are gathered together and stacked on the batch axis,
so each layer is one Gemm that reads the shared kernel once for both; only the gathered token rows
and the output projections are per core (`_shared_cores`). The shipped trio's step: 707 -> 608 us at
batch 1, 1,582 -> 1,391 us at batch 8 (1.16x / 1.14x, interleaved, load ~3 on 2 cores), outputs
identical.

Measured per step (gather, format 1) (small sizes, 1 thread, onnxruntime 1.31, loaded 2-core machine): mel_2bar
220 -> 196 us at batch 1, 293 -> 265 us at batch 8; trio_16bar 611 -> 449 us at batch 1,
954 -> 744 us at batch 8; with cond_proj a further ~15-20 % (mel_2bar 241 -> 199 us, trio_16bar
514 -> 433 us at batch 1). The remaining time is the Gemms reading the weights (memory bound).
"""
from __future__ import annotations

import numpy as np

FORGET_BIAS = 1.0


def step_cores(decoder):
    """[(core, (a, b))] for decoders made of `LstmCoreDecoder`s (flat, hierarchical, split trio);
    None when the decoder has another structure (the exporter then traces `decoder.step`)."""
    from .lstm import StackedLSTM
    cores = getattr(decoder, "cores", None)
    if cores is not None:
        slices = getattr(decoder, "_core_slices", None)
    elif getattr(decoder, "core", None) is not None:
        cores, slices = [decoder.core], [(0, decoder.input_size)]
    else:
        return None
    if slices is None or len(slices) != len(cores):
        return None
    for core, (a, b), width in zip(cores, slices, cond_widths(decoder, len(cores))):
        lstm = getattr(core, "lstm", None)
        if not isinstance(lstm, StackedLSTM) or getattr(core, "output_projection", None) is None:
            return None
        if lstm.input_size != (b - a) + width or lstm.units != decoder.units:
            return None
        if lstm.layers != decoder.layers or sum(getattr(core, "num_classes", [-1])) != b - a:
            return None
    return list(zip(cores, slices))


def cond_widths(decoder, cores: int) -> list[int]:
    """How many columns of cond each core reads: all of them, or its `_cond_slices` entry."""
    slices = getattr(decoder, "_cond_slices", None)
    return [decoder.cond_size] * cores if slices is None else [b - a for a, b in slices]


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _reordered(cell):
    """A TF cell's kernel and bias with the gate columns as i, f, o, j and the forget bias folded in."""
    kern, bias = _np(cell.kernel), _np(cell.bias)
    U = cell.units
    i, j, f, o = (slice(g * U, (g + 1) * U) for g in range(4))
    kern = np.concatenate([kern[:, i], kern[:, f], kern[:, o], kern[:, j]], axis=1)
    bias = np.concatenate([bias[i], bias[f] + np.float32(FORGET_BIAS), bias[o], bias[j]])
    return kern, bias


def cond_blocks(decoder):
    """[(a, b, kernel (b - a, 4U), bias (4U))] per core: the columns [a, b) of cond the core reads and
    their part of its layer-1 gates, bias included (gate order i, f, o, j; forget bias folded).
    None if unsupported."""
    parts = step_cores(decoder)
    if parts is None:
        return None
    slices = getattr(decoder, "_cond_slices", None) or [(0, decoder.cond_size)] * len(parts)
    out = []
    for (core, (a, b)), (ca, cb) in zip(parts, slices):
        kern, bias = _reordered(core.lstm.cells[0])
        n_k = b - a
        out.append((ca, cb, kern[n_k:n_k + cb - ca], bias))
    return out


def cond_projection(decoder):
    """(kernel (cond_size, cores * 4U), bias (cores * 4U)): the conditioning's part of every core's
    layer-1 gates (`cond_blocks` laid out densely: zero rows where a core does not read cond).
    `decoder_init` outputs `cond_proj = cond @ kernel + bias`, constant for a bar, and the step graph
    adds its core's slice instead of multiplying `cond` by its kernel rows at every step. None if
    unsupported."""
    blocks = cond_blocks(decoder)
    if blocks is None:
        return None
    g = blocks[0][3].shape[0]
    kernel = np.zeros((decoder.cond_size, g * len(blocks)), np.float32)
    for k, (a, b, kern, _) in enumerate(blocks):
        kernel[a:b, k * g:(k + 1) * g] = kern
    return kernel, np.concatenate([bias for *_, bias in blocks])


def _recurrent_weights(core, width: int) -> list[np.ndarray]:
    """What two cores must share to run as one: layer 1's kernel rows after the token and cond
    rows (the h rows; its bias travels in cond_proj) and every later layer's kernel and bias."""
    out = []
    for l, lstm_cell in enumerate(core.lstm.cells):
        kern, bias = _reordered(lstm_cell)
        out += [kern[sum(core.num_classes) + width:]] if l == 0 else [kern, bias]
    return out


def shared_groups(parts, widths) -> list[list[int]]:
    """Core indices grouped by equal recurrent weights (`_recurrent_weights`), in order of first
    appearance: [[0, 1], [2]] for the trio chain (lead and bass are both mel_2bar's core)."""
    groups: list[tuple[list, list[int]]] = []
    for k, (core, _) in enumerate(parts):
        w = _recurrent_weights(core, widths[k])
        for ref, members in groups:
            if len(ref) == len(w) and all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ref, w)):
                members.append(k)
                break
        else:
            groups.append((w, [k]))
    return [members for _, members in groups]


def _shared_cores(group, parts, widths, first_row, node, const, cell, token_rows, project, projs, U) -> dict:
    """The nodes of cores that share their LSTM weights, their rows stacked on the batch axis:
    {"states": {state row: (c', h') of (B, U)}, "logits": {core: (B, classes_k)}}."""
    g = f"g{group[0]}"
    unstack = const("unstack_shape", np.array([-1, U], np.int64))
    core0 = parts[group[0]][0]
    states, x = {}, None
    for l, lstm_cell in enumerate(core0.lstm.cells):
        kern, bias = _reordered(lstm_cell)
        p = f"{g}l{l}"
        rows = [first_row[k] + l for k in group]
        idx = const(f"{p}_rows", np.array(rows, np.int64))
        c_prev = node("Reshape", [node("Gather", ["state_c", idx], [f"{p}_c3"], axis=0), unstack], [f"{p}_c"])
        h_prev = node("Reshape", [node("Gather", ["state_h", idx], [f"{p}_h3"], axis=0), unstack], [f"{p}_h"])
        if l == 0:
            n0 = sum(core0.num_classes)
            cp = node("Concat", [projs[k] for k in group], [f"{p}_cond_proj"], axis=0)
            mm = node("Gemm", [h_prev, const(f"{p}_kernel", kern[n0 + widths[group[0]]:]), cp], [f"{p}_mm"])
            embs = []
            for k in group:
                n_k = sum(parts[k][0].num_classes)
                embs.append(token_rows(k, f"c{k}l0", _reordered(parts[k][0].lstm.cells[0])[0][:n_k]))
            emb = node("Concat", embs, [f"{p}_emb"], axis=0)
            gates = node("Add", [mm, emb], [f"{p}_gates"])
        else:
            xin = node("Concat", [x, h_prev], [f"{p}_xh"], axis=1)
            gates = node("Gemm", [xin, const(f"{p}_kernel", kern), const(f"{p}_bias", bias)], [f"{p}_gates"])
        c_new, h_new = cell(gates, c_prev, p)
        cs = node("Split", [c_new], [f"{p}_c_new_{k}" for k in group], axis=0)
        hs = node("Split", [h_new], [f"{p}_h_new_{k}" for k in group], axis=0)
        for r, cc, hh in zip(rows, cs, hs):
            states[r] = (cc, hh)
        x = h_new
    tops = node("Split", [x], [f"{g}_top_{k}" for k in group], axis=0)
    return {"states": states, "logits": {k: project(k, top) for k, top in zip(group, tops)}}


def build_step_model(decoder, opset: int, gather: bool = True, cond_proj: bool = False):
    """An onnx ModelProto for `decoder.step` (see the module docstring); None if unsupported.

    gather=False multiplies the one-hot by its kernel rows (a dense MatMul) instead of gathering them.
    cond_proj=True: the graph's second input is `cond_proj (B, cores * 4U)` (see `cond_projection`,
    output by decoder_init) instead of `cond`; needs gather."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    parts = step_cores(decoder)
    if parts is None or not 13 <= opset <= 17:   # Split/ReduceMax as defined in opsets 13-17
        return None
    U, L, n_in, n_cond = decoder.units, decoder.state_layers, decoder.input_size, decoder.cond_size
    widths = cond_widths(decoder, len(parts))
    if getattr(decoder, "_cond_slices", None) is not None and not cond_proj:
        return None     # cores reading parts of cond: only the cond_proj contract is written here
    nodes, inits, seen = [], [], {}

    def const(name, arr):
        # one initializer for equal arrays (cores sharing their short model's weights)
        arr = np.asarray(arr)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in seen:
            seen[key] = name
            inits.append(numpy_helper.from_array(arr, name))
        return seen[key]

    def node(op, ins, outs, **attrs):
        nodes.append(helper.make_node(op, ins, outs, name=f"{op}_{len(nodes)}", **attrs))
        return outs[0] if len(outs) == 1 else outs

    if len(parts) > 1:
        prevs = node("Split", ["prev", const("prev_split", np.array([b - a for _, (a, b) in parts], np.int64))],
                     [f"prev_{k}" for k in range(len(parts))], axis=1)
    else:
        prevs = ["prev"]
    if cond_proj and not gather:
        raise ValueError("cond_proj needs gather")
    cond_in, cond_width = ("cond_proj", 4 * U * len(parts)) if cond_proj else ("cond", n_cond)
    if cond_proj and len(parts) > 1:
        projs = node("Split", ["cond_proj"], [f"cond_proj_{k}" for k in range(len(parts))], axis=1)
    else:
        projs = ["cond_proj"]
    split_gates = const("split_gates", np.array([3 * U, U], np.int64))
    layers = [len(core.lstm.cells) for core, _ in parts]
    first_row = np.concatenate([[0], np.cumsum(layers)[:-1]]).tolist()    # state row of core k's layer 0

    def cell(gates, c_prev, p):
        """The LSTM update from the fused gates (i, f, o | j): (c', h')."""
        sg, jg = node("Split", [gates, split_gates], [f"{p}_ifo_pre", f"{p}_j_pre"], axis=1)
        ifo = node("Sigmoid", [sg], [f"{p}_ifo"])
        jt = node("Tanh", [jg], [f"{p}_j"])
        ig, fg, og = node("Split", [ifo], [f"{p}_i", f"{p}_f", f"{p}_o"], axis=1)
        cf = node("Mul", [c_prev, fg], [f"{p}_cf"])
        ij = node("Mul", [ig, jt], [f"{p}_ij"])
        c_new = node("Add", [cf, ij], [f"{p}_c_new"])
        ct = node("Tanh", [c_new], [f"{p}_c_tanh"])
        return c_new, node("Mul", [ct, og], [f"{p}_h_new"])

    def token_rows(k, p, rows_k):
        """The gathered layer-1 kernel rows of core k's previous token(s), summed over its tracks: (B, 4U)."""
        # one gathered row per track of this core (a flat multi-track core has several)
        classes = list(parts[k][0].num_classes)
        if len(classes) > 1:
            segs = node("Split", [prevs[k], const(f"{p}_tracks", np.array(classes, np.int64))],
                        [f"{p}_prev_t{t}" for t in range(len(classes))], axis=1)
        else:
            segs = [prevs[k]]
        acc, off = None, 0
        for t, (seg, n) in enumerate(zip(segs, classes)):
            q = f"{p}_t{t}"
            tok = node("ArgMax", [seg], [f"{q}_tok"], axis=1, keepdims=0)
            on = node("ReduceMax", [seg], [f"{q}_on"], axes=[1], keepdims=1)
            emb = node("Gather", [const(f"{q}_rows", rows_k[off:off + n]), tok], [f"{q}_emb"], axis=0)
            emb = node("Mul", [emb, on], [f"{q}_emb_on"])
            acc = emb if acc is None else node("Add", [acc, emb], [f"{q}_acc"])
            off += n
        return acc

    def project(k, top):
        """Core k's output projection of its top layer's h: its logits (B, classes_k)."""
        proj = parts[k][0].output_projection
        return node("Gemm", [top, const(f"c{k}_out_kernel", _np(proj.kernel)),
                             const(f"c{k}_out_bias", _np(proj.bias))], [f"c{k}_logits"])

    new_c, new_h, logits = {}, {}, [None] * len(parts)
    for group in shared_groups(parts, widths) if cond_proj and gather else [[k] for k in range(len(parts))]:
        if len(group) > 1:
            # cores with the same LSTM weights (one short model's, e.g. the trio chain's lead and
            # bass): one Gemm per layer over their rows stacked on the batch axis reads the weights
            # once; only the token rows and the output projections are the core's own
            outs = _shared_cores(group, parts, widths, first_row, node, const, cell, token_rows, project, projs, U)
            for row, (c_new, h_new) in outs["states"].items():
                new_c[row], new_h[row] = c_new, h_new
            for k, lg in outs["logits"].items():
                logits[k] = lg
            continue
        k = group[0]
        core = parts[k][0]
        x = None
        for l, lstm_cell in enumerate(core.lstm.cells):
            kern, bias = _reordered(lstm_cell)
            p = f"c{k}l{l}"
            row = first_row[k] + l
            idx = const(f"{p}_row", np.array(row, np.int64))
            c_prev = node("Gather", ["state_c", idx], [f"{p}_c"], axis=0)
            h_prev = node("Gather", ["state_h", idx], [f"{p}_h"], axis=0)
            n_k = parts[k][1][1] - parts[k][1][0]
            if l == 0 and gather:
                rows_k, rest = kern[:n_k], kern[n_k:]
                if cond_proj:   # cond @ kernel + bias came from decoder_init: Gemm's C input
                    mm = node("Gemm", [h_prev, const(f"{p}_kernel", rest[widths[k]:]), projs[k]], [f"{p}_mm"])
                else:
                    xin = node("Concat", ["cond", h_prev], [f"{p}_xh"], axis=1)
                    mm = node("Gemm", [xin, const(f"{p}_kernel", rest), const(f"{p}_bias", bias)], [f"{p}_mm"])
                gates = node("Add", [mm, token_rows(k, p, rows_k)], [f"{p}_gates"])
            else:
                xs = [prevs[k], "cond", h_prev] if l == 0 else [x, h_prev]
                xin = node("Concat", xs, [f"{p}_xh"], axis=1)
                gates = node("Gemm", [xin, const(f"{p}_kernel", kern), const(f"{p}_bias", bias)], [f"{p}_gates"])
            new_c[row], new_h[row] = cell(gates, c_prev, p)
            x = new_h[row]
        logits[k] = project(k, x)
    new_c = [new_c[r] for r in range(L)]
    new_h = [new_h[r] for r in range(L)]
    if len(logits) > 1:
        node("Concat", logits, ["logits"], axis=1)
    else:
        nodes.append(helper.make_node("Identity", [logits[0]], ["logits"], name="logits"))
    state_shape = const("state_shape", np.array([L, -1, U], np.int64))
    for name, vals in (("new_state_c", new_c), ("new_state_h", new_h)):
        flat = node("Concat", vals, [f"{name}_flat"], axis=0)   # (L * B, U)
        node("Reshape", [flat, state_shape], [name])

    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("prev", f32, ["B", n_in]),
              helper.make_tensor_value_info(cond_in, f32, ["B", cond_width]),
              helper.make_tensor_value_info("state_c", f32, [L, "B", U]),
              helper.make_tensor_value_info("state_h", f32, [L, "B", U])]
    outputs = [helper.make_tensor_value_info("logits", f32, ["B", n_in]),
               helper.make_tensor_value_info("new_state_c", f32, [L, "B", U]),
               helper.make_tensor_value_info("new_state_h", f32, [L, "B", U])]
    graph = helper.make_graph(nodes, "decoder_step", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="latent-bridge export_onnx.step_graph")
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    return model
