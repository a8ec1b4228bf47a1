#!/usr/bin/env python3
"""Mutation check: does the test suite notice when the code breaks?

    .venv/bin/python scripts/mutants.py            # every mutant (make mutants)
    .venv/bin/python scripts/mutants.py --list     # the mutants and the tests meant to catch them
    .venv/bin/python scripts/mutants.py NAME ...   # only these (also: --keep to keep the trees)

Each named mutant below is a small, realistic bug (MIDI out one 16th late, a morph that sends step 0
every time, a shipped model's weights replaced by noise, one per op of the OSC protocol, one per
codec, ...). For each one a fresh temporary copy of the tree is made (the files git tracks plus the
untracked ones it does not ignore; .venv and the Node modules are symlinked, the audit's window
cache copied, ../shared linked beside it), the mutant is applied there, and only the tests meant to
catch it run. A mutant is killed when one of them fails; the check fails when any mutant survives.

First the same tests run once on an unmutated copy (--no-baseline skips that): a test that fails
there would "kill" every mutant and prove nothing. A mutant whose code is no longer where it expects
(the code moved on) is an error, not a survivor: update its `old` text. So is a mutant whose tests
skipped (the JACK timing test skips on a machine too busy to keep its MIDI clock steady).

Not part of `make test` (it takes several minutes: see README.md).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
PY = ".venv/bin/python"
TIMEOUT_S = 900


def pytest(*args: str) -> list[str]:
    return [PY, "-m", "pytest", "-x", "-q", "-rfEs", "-p", "no:cacheprovider", *args]


def node(*files: str) -> list[str]:
    return ["node", "--test", *files]


@dataclass
class Mutant:
    name: str
    what: str                       # the bug it stands for
    tests: list[list[str]]          # commands run in the mutated tree's root; one failing = killed
    file: str | None = None         # text mutants: `old` must occur exactly once in `file`
    old: str | None = None
    new: str | None = None
    apply: Callable[[Path], None] | None = None     # other mutants: change the tree
    group: str = "issue 18"


# ---------------------------------------------------------------------------------------- custom
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def noise_decoder(package: str) -> Callable[[Path], None]:
    """Replace the decoder graphs' weights with noise of the same scale and re-seal every hash: the
    package's sha256 list in model.json and the weights' identity in audit.json, so only a check of
    what the model does can tell."""
    def apply(tree: Path) -> None:
        import numpy as np
        import onnx
        from onnx import numpy_helper
        pkg = tree / "bridge" / "models" / package
        rng = np.random.default_rng(18)
        changed = []
        for graph in ("decoder_init.onnx", "decoder_step.onnx"):
            model = onnx.load(str(pkg / graph))
            for init in model.graph.initializer:
                w = numpy_helper.to_array(init)
                if w.dtype.kind == "f" and w.size > 16:
                    noise = rng.standard_normal(w.shape) * float(np.std(w.astype(np.float64)) or 1.0)
                    init.CopyFrom(numpy_helper.from_array(noise.astype(w.dtype), init.name))
            (pkg / graph).unlink()
            onnx.save(model, str(pkg / graph))
            changed.append(graph)
        manifest = pkg / "model.json"
        info = json.loads(manifest.read_text())
        for graph in changed:
            info["files"][graph] = _sha256(pkg / graph)
        manifest.write_text(json.dumps(info, indent=1) + "\n")
        audit_path = pkg / "audit.json"
        if audit_path.is_file():
            audit = json.loads(audit_path.read_text())
            lines = "".join(f"{f} {s}\n" for f, s in sorted(info["files"].items()) if f.endswith(".onnx"))
            audit["graphs_sha256"] = hashlib.sha256(lines.encode()).hexdigest()
            audit["model_json_sha256"] = _sha256(manifest)
            audit_path.write_text(json.dumps(audit, indent=1) + "\n")
    return apply


# ---------------------------------------------------------------------------------------- the list
LIVE = "tests/bridge/live/test_live.py"
SERVER = "tests/bridge/daemon/test_server.py"
CODECS = "tests/bridge/core/test_codecs.py"
DOPS = "bridge/daemon/ops.py"
LOPS = "bridge/live/ops.py"
CONTENT = "tests/bridge/daemon/test_ops_content.py"
PALETTE_OPS = "tests/bridge/daemon/test_palette_ops.py"

MUTANTS = [
    # ---- the table of issue 18: each was missed by the tests before
    Mutant("midi_out_16th_late", "MIDI out plays every note one 16th (125 ms at 120 bpm) late",
           [pytest("tests/bridge/live/test_midi_jack.py")],
           "bridge/live/midi.py", "on = base + n.start\n", "on = base + n.start + 0.25\n"),
    Mutant("midi_in_poll_time", "polled MIDI input stamps each message with the poll time, not its native arrival",
           [pytest("tests/bridge/live/test_midi.py")],
           "bridge/live/midi_in.py", "return self._native + min(self._offsets)", "return polled_at"),
    Mutant("midi_out_one_tick_late", "MIDI out plays every note one clock tick (20.8 ms at 120 bpm) late",
           [pytest("tests/bridge/live/test_midi_jack.py")],
           "bridge/live/midi.py", "on = base + n.start\n", "on = base + n.start + 1 / 24\n"),
    Mutant("morph_sends_step0", "every morph step sends step 0's notes",
           [pytest(LIVE, "-k", "morph_job_streams or morph_every_step")],
           "bridge/live/morph.py", "self.seqs[step]", "self.seqs[0]"),
    Mutant("mel_2bar_noise_weights", "the shipped mel_2bar decoder's weights replaced by noise, hashes re-sealed",
           [pytest("tests/bridge/runtime/test_shipped_models.py", "-k", "audited and mel_2bar")],
           apply=noise_decoder("mel_2bar")),
    Mutant("knob_offsets_zeroed", "knob moves over OSC do not move the latent",
           [pytest(LIVE, "-k", "knob_over_osc")],
           LOPS, "z += KNOB_RANGE * value * vectors[name]", "z += 0.0 * KNOB_RANGE * value * vectors[name]"),
    Mutant("accompany_build_fails", "the device test's accompany package does not build",
           [node("max_for_live/LatentBridge/tests/accompany.test.js")],
           "export_onnx/surrogate/fixtures.py", "def tiny_accompany_package(tiny_trio_package, out_dir, seed: int = 0) -> Path:\n",
           "def tiny_accompany_package(tiny_trio_package, out_dir, seed: int = 0) -> Path:\n"
           "    raise RuntimeError('mutant: the accompany package build fails')\n"),
    Mutant("pianoroll_draws_no_notes", "piano-roll pictures without their notes",
           [pytest("tests/bridge/io/test_pianoroll.py")],
           "bridge/io/pianoroll.py", "ax.add_collection(_note_boxes(notes))", "_note_boxes(notes)"),
    Mutant("backoff_constant", "the device's reconnect backoff does not grow",
           [node("max_for_live/LatentBridge/tests/client.test.js")],
           "max_for_live/LatentBridge/code/lb_client.js",
           "cfg.backoffMs[Math.min(attempts, cfg.backoffMs.length - 1)]", "cfg.backoffMs[0]"),

    # ---- one per op of the OSC protocol (docs/osc-protocol.md)
    Mutant("op_ping", "ping drops its echo", [pytest(SERVER, "-k", "ping_echo")],
           DOPS, 'out["echo"] = request.fields["echo"]', 'out["echo"] = None', group="ops"),
    Mutant("op_hello", "hello lists no models", [pytest(SERVER, "-k", "ready_line")],
           DOPS, '"models": sorted(request.server.models),', '"models": [],', group="ops"),
    Mutant("op_models", "models loses the attribute names", [pytest(SERVER, "-k", "ready_line")],
           DOPS, '"attributes": direction_names(info),', '"attributes": [],', group="ops"),
    Mutant("op_stats", "stats reports no requests", [pytest(SERVER, "-k", "stats_counts")],
           DOPS, "return request.server.stats_snapshot()", 'return {**request.server.stats_snapshot(), "requests": 0}',
           group="ops"),
    Mutant("op_sample", "sample ignores its seed", [pytest(SERVER, "-k", "sample_matches")],
           DOPS, "model.sample(n, temperature=temperature, seed=seed, mask=mask)",
           "model.sample(n, temperature=temperature, seed=None, mask=mask)", group="ops"),
    Mutant("op_encode", "encode answers a scaled latent", [pytest(SERVER, "-k", "encode_decode_reconstruct")],
           DOPS, '"z": z_to_list(z)}', '"z": z_to_list(z * 0.5)}', group="ops"),
    Mutant("op_decode", "decode answers a batch in reverse order", [pytest(CONTENT, "-k", "decode_a_batch")],
           DOPS, "remember(session, model, z[-1])\n    return Sequences(model, decode(model, z, ",
           "remember(session, model, z[-1])\n    return Sequences(model, decode(model, z[::-1], ",
           group="ops"),
    Mutant("op_reconstruct", "reconstruct samples instead of taking the argmax",
           [pytest(SERVER, "-k", "encode_decode_reconstruct")],
           DOPS, "remember(session, model, z[0])\n    return Sequences(model, decode(model, z, temperature",
           "remember(session, model, z[0])\n    return Sequences(model, decode(model, z, temperature + 1.0",
           group="ops"),
    Mutant("op_interpolate", "interpolate ignores `method`", [pytest(CONTENT, "-k", "interpolate")],
           DOPS, "path = latent.interpolate(za, zb, steps, method)", 'path = latent.interpolate(za, zb, steps, "lerp")',
           group="ops"),
    Mutant("op_attribute", "attribute moves the wrong way", [pytest(SERVER, "-k", "test_attribute")],
           DOPS, "model.attribute(z, name, amount)", "model.attribute(z, name, -amount)", group="ops"),
    Mutant("op_palette", "palette swaps two corners", [pytest(CONTENT, "-k", "palette")],
           DOPS, "grid = latent.palette(zs, (rows, cols))", "grid = latent.palette(zs[[0, 2, 1, 3]], (rows, cols))",
           group="ops"),
    Mutant("op_variations", "variations ignore `spread`", [pytest(CONTENT, "-k", "variations")],
           DOPS, "latent.variations(z, n, spread, rng=seed)", "latent.variations(z, n, 0.0, rng=seed)", group="ops"),
    Mutant("op_accompany", "accompany answers for the first note only",
           [pytest("tests/bridge/runtime/test_accompany.py", "-k", "op_accompany_end_to_end")],
           DOPS, "band = model.accompany(notes,", "band = model.accompany(notes[:1],", group="ops"),
    Mutant("op_transport", "transport does not update the song position", [pytest(LIVE, "-k", "needs_transport")],
           LOPS, "live.transport.update(request.fields)", "live.transport.snapshot()", group="ops"),
    Mutant("op_morph", "morph interpolates from a to a", [pytest(LIVE, "-k", "morph_every_step")],
           LOPS, "latent.interpolate(end_a(), end_b(), steps, method)",
           "latent.interpolate(end_a(), end_a(), steps, method)", group="ops"),
    Mutant("op_stop", "stop stops nothing", [pytest(LIVE, "-k", "stop_and_a_superseding")],
           LOPS, 'morph_id = request.integer("morph", None, 0)\n    job = live.stop_morph(morph_id)',
           'morph_id = request.integer("morph", None, 0)\n    job = None', group="ops"),
    Mutant("op_directions", "directions lists them in the wrong order", [pytest(LIVE, "-k", "needs_transport")],
           LOPS, "enumerate(direction_table(model.info))", "enumerate(direction_table(model.info)[::-1])", group="ops"),
    Mutant("op_knob", "a knob turned up moves down", [pytest(LIVE, "-k", "knob_over_osc")],
           LOPS, "live.knobs.setdefault(model.name, {})[name] = value",
           "live.knobs.setdefault(model.name, {})[name] = -value", group="ops"),

    # ---- palettes (issue 23)
    Mutant("palette_sample_ignored", "sample with a palette draws from N(0, I) all the same",
           [pytest(PALETTE_OPS, "-k", "sample_draws_from_the_palette")],
           DOPS, "z = palette.sample(n, palette_spread(request), rng)", "z = model.sample_z(n, rng)",
           group="palettes"),
    Mutant("palette_state_not_read_back", "palettes saved in --state-dir are not read back at start",
           [pytest(PALETTE_OPS, "-k", "survive_a_restart or store_bounds")],
           "bridge/daemon/palettes.py", "            self._load()\n", "            pass\n", group="palettes"),
    Mutant("palette_learn_ignores_meter", "learn accepts clips in 3/4",
           [pytest(PALETTE_OPS, "-k", "learn_bad_input")],
           "bridge/daemon/palette_ops.py", "if tuple(ts) != (4, 4):", "if tuple(ts) == (0, 0):", group="palettes"),
    Mutant("palette_knob_model_direction", "a palette's knob moves the model's direction of that index",
           [pytest("tests/bridge/live/test_palette_live.py", "-k", "knob")],
           LOPS, "    if palette is None:\n        index, d = resolve(", "    if True:\n        index, d = resolve(",
           group="palettes"),
    Mutant("device_mine_ignored", "the device's Mine toggle does not reach Generate",
           [node("max_for_live/LatentBridge/tests/device.test.js")],
           "max_for_live/LatentBridge/code/lb_app.js", "if (mine && payload) { payload.palette = mine.name; }",
           "if (false) { payload.palette = mine.name; }", group="palettes"),

    # ---- issue 25: control surfaces (bridge/surface)
    Mutant("surface_knob_unscaled", "a surface knob's 0..1 reaches the knob op unscaled (centre is not 0)",
           [pytest("tests/bridge/surface/test_osc_surface.py", "-k", "knob")],
           "bridge/surface/actions.py", '"value": 2.0 * value - 1.0,', '"value": value,', group="issue 25"),
    Mutant("surface_feedback_unbounded", "surface feedback resends every value every round, without a cap",
           [pytest("tests/bridge/surface/test_surface_units.py", "-k", "feedback")],
           "bridge/surface/osc.py", "                if self.sent.get(address) != args:\n",
           "                if True:\n", group="issue 25"),
    Mutant("surface_plays_first_note", "a pattern made from the page reaches MIDI out with its first note only",
           [pytest("tests/bridge/surface/test_web_jack.py")],
           "bridge/surface/actions.py", "hub.pattern(session, notes, bar, bars * BEATS_PER_BAR)",
           "hub.pattern(session, notes[:1], bar, bars * BEATS_PER_BAR)", group="issue 25"),

    Mutant("pair_sampler_ignored", "a package's low-KL sampler is loaded but `sample` decodes with the package",
           [pytest("tests/export_onnx/test_pair.py")],
           "bridge/runtime/engine.py", "        if self.sampler is not None:\n            return self.sampler.sample(",
           "        if False:\n            return self.sampler.sample(", group="issue 17"),

    # ---- issue 22: no new Max symbol per message (typed requests, numeric /bridge/seq)
    Mutant("typed_args_shifted", "a typed request's arguments are read one slot off (the beat taken as the tempo)",
           [pytest("tests/bridge/daemon/test_typed.py", "-k", "typed_transport"),
            pytest("tests/bridge/live/test_live_typed.py", "-k", "knob_answers_typed")],
           "bridge/daemon/typed.py", "enumerate(zip(self.slots, args))", "enumerate(zip(self.slots, args[1:] + args[:1]))",
           group="issue 22"),
    Mutant("device_numeric_seq_misread", "the device reads a numeric /bridge/seq one argument off",
           [node("max_for_live/LatentBridge/tests/symbols.test.js")],
           "max_for_live/LatentBridge/code/lb_client.js", "    var pos = 8;\n", "    var pos = 9;\n", group="issue 22"),

    Mutant("bench_stage_drops_sampler", "the benchmark stages a pair without its sampler (the daemon cannot load it)",
           [pytest("tests/benchmarks/test_benchmarks_runner.py", "-k", "staging")],
           "benchmarks/packages.py", "(f.is_file() or f.is_dir())", "f.is_file()", group="issue 17"),

    # ---- issue 20: the int8 encoder behind its gate
    Mutant("int8_encoder_ignored", "the runtime runs the float encoder where the int8 one was chosen",
           [pytest("tests/export_onnx/test_int8_encoder.py")],
           "bridge/runtime/engine.py", '("encoder", encoder_file, self.encoder_precision)',
           '("encoder", encoder_file, "fp32")', group="issue 20"),
    Mutant("int8_gate_ignored", "add-int8 keeps its int8 graphs (step and encoder) whatever their agreement",
           [pytest("tests/export_onnx/test_int8_encoder.py", "tests/export_onnx/test_int8.py")],
           "export_onnx/int8_gate.py", "    if low < min_agreement:\n", "    if False:\n", group="issue 20"),
    Mutant("int8_encoder_batched", "the int8 encoder runs a whole batch in one call (codes depend on the batch)",
           [pytest("tests/export_onnx/test_int8_encoder.py")],
           "bridge/runtime/engine.py", 'if self.encoder_precision == "fp32":', "if True:", group="issue 20"),
    Mutant("bench_interleaved_skips_local", "the benchmark's interleaved in-process op is not run",
           [pytest("tests/benchmarks/test_benchmarks_runner.py")],
           "benchmarks/daemon.py", "        local()\n        ls.append(", "        ls.append(", group="issue 20"),
    # ---- issue 17: mel_16bar as a chain of mel_2bar codes
    Mutant("chain_segments_as_bars", "the decode loop gives every conductor embedding one bar, not its segment",
           [pytest("tests/export_onnx/test_latent_chain.py")],
           "bridge/runtime/engine.py", "return segments, self.num_steps // segments",
           "return self.bars, self.steps_per_bar", group="issue 17"),
    Mutant("chain_codes_segment_order", "chain-codes files a window's segment codes in the wrong order",
           [pytest("tests/export_onnx/test_latent_chain.py")],
           "export_onnx/latent_chain/training.py", "np.concatenate(mus).reshape(shape)",
           "np.concatenate(mus).reshape(segments, n, -1).transpose(1, 0, 2)", group="issue 17"),
    # ---- issue 17: the trio as a chain of mel_2bar / drums_2bar codes
    Mutant("trio_chain_bass_unmoved", "the chain encodes the bass without moving it into mel_2bar's range",
           [pytest("tests/export_onnx/test_latent_chain_trio.py", "-k", "codes")],
           "export_onnx/latent_chain/model.py", "return self.short(x @ self.move if self.shift else x)",
           "return self.short(x)", group="issue 17"),
    Mutant("trio_chain_cores_read_one_code", "every core of the trio chain reads the lead's code",
           [pytest("tests/export_onnx/test_latent_chain_trio.py", "-k", "package")],
           "export_onnx/model.py", "[cond[:, a:b] for a, b in slices]", "[cond[:, :b - a] for a, b in slices]",
           group="issue 17"),
    Mutant("step_graph_shares_unequal_weights", "the step graph stores one initializer for arrays of one shape",
           [pytest("tests/export_onnx/test_latent_chain_trio.py", "-k", "package")],
           "export_onnx/step_graph.py", "key = (arr.dtype.str, arr.shape, arr.tobytes())",
           "key = (arr.dtype.str, arr.shape)", group="issue 17"),
    Mutant("linear_chain_unweighted", "the linear chain's encoder forgets the likelihood weights of the codes",
           [pytest("tests/export_onnx/test_latent_chain_trio.py", "-k", "linear")],
           "export_onnx/latent_chain/linear.py", "enc.mu.kernel.copy_(torch.from_numpy((w[:, None] * v.T) / scale[None, :]))",
           "enc.mu.kernel.copy_(torch.from_numpy(v.T / scale[None, :]))", group="issue 17"),
    # ---- issue 17: drums_2bar samples from a prior fitted to its own codes
    Mutant("fitted_prior_ignored", "a package's fitted prior is read but `sample` draws z from N(0, I)",
           [pytest("tests/bridge/runtime/test_prior.py", "-k", "sample_draws")],
           "bridge/runtime/engine.py", "        if self.prior is not None:\n            return self.prior.draw(n, rng)\n",
           "", group="issue 17"),
    Mutant("fitted_prior_unscaled", "the prior's axes are not scaled by their standard deviations",
           [pytest("tests/export_onnx/test_latent_prior.py", "-k", "principal_axes")],
           "export_onnx/latent_prior.py", "LatentPrior(mean, np.sqrt(values[:k])[:, None] * vectors[:, :k].T)",
           "LatentPrior(mean, vectors[:, :k].T)", group="issue 17"),
    Mutant("fitted_prior_worst_k", "fit-prior keeps the candidate k whose samples are farthest from the data",
           [pytest("tests/export_onnx/test_latent_prior.py", "-k", "chooses_k")],
           "export_onnx/latent_prior.py", 'best = min(rows, key=lambda r: r["error"])["components"]',
           'best = max(rows, key=lambda r: r["error"])["components"]', group="issue 17"),
    Mutant("fitted_prior_unlisted", "a prior file not sealed by the manifest's sha256 list is read",
           [pytest("tests/bridge/runtime/test_prior.py", "-k", "malformed")],
           "bridge/runtime/prior.py", "    if name not in (info.get(\"files\") or {}):\n",
           "    if False:\n", group="issue 17"),
    Mutant("validation_recon_first_windows", "validation's recon_acc decodes the split's first 256 windows (a few songs)",
           [pytest("tests/export_onnx/test_train.py", "-k", "reconstruction_accuracy")],
           "export_onnx/train.py", "out[\"recon_acc\"] = reconstruction_accuracy(model, tokens[picked], device, batch_size)",
           "out[\"recon_acc\"] = reconstruction_accuracy(model, tokens[:len(picked)], device, batch_size)", group="issue 17"),
    Mutant("fitted_prior_keeps_stale_int8", "fit-prior keeps an int8 graph gated on the old prior samples",
           [pytest("tests/export_onnx/test_latent_prior.py", "-k", "int8")],
           "export_onnx/latent_prior.py", "if isinstance(q, dict) and q.get(\"file\"):", "if False:", group="issue 17"),
    Mutant("int8_encoder_tied_weights", "add-int8 quantises an encoder whose LSTMs share weights as it is",
           [pytest("tests/export_onnx/test_latent_chain_trio.py", "-k", "tied")],
           "export_onnx/int8_encoder.py", "    unshare_lstm_weights(model)\n", "", group="issue 20"),
    Mutant("peers_wasm_on_cpu", "the magenta.js harness ignores the asked tfjs backend (wasm timed on the JS CPU one)",
           [pytest("tests/benchmarks/test_peers.py", "-k", "mel_2bar")],
           "tests/magenta_js/harness.js", "const backend = job.backend || 'cpu';", "const backend = 'cpu';",
           group="issue 20"),
    Mutant("step_graph_cores_unshared", "the trio chain's lead and bass cores run as separate Gemms again (weights read twice a step)",
           [pytest("tests/export_onnx/test_latent_chain_trio.py", "-k", "package")],
           "export_onnx/step_graph.py", "                members.append(k)\n                break\n",
           "                pass\n", group="issue 20"),
    # ---- one per codec
    Mutant("codec_melody", "melody skyline: the lowest note wins", [pytest(CODECS, "-k", "melody")],
           "bridge/core/codecs.py", "if k < 0 or pitch >= spans[k][2]:", "if k < 0 or pitch < spans[k][2]:",
           group="codecs"),
    Mutant("codec_drums", "drums: only the last hit of a step is kept", [pytest(CODECS, "-k", "drum")],
           "bridge/core/codecs.py", "tokens[s] |= 1 << cls", "tokens[s] = 1 << cls", group="codecs"),
    Mutant("codec_trio", "trio: every decoded note lands on track 0", [pytest(CODECS, "-k", "trio")],
           "bridge/core/codecs.py", "codec.decode(tokens[:, i], velocity=velocity, track=i)",
           "codec.decode(tokens[:, i], velocity=velocity, track=0)", group="codecs"),
]


# ---------------------------------------------------------------------------------------- the tree
def tree_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True).stdout.decode()
    return sorted({p for p in out.split("\0") if p})


def make_tree(base: Path) -> Path:
    """A copy of the working tree at base/main (base/shared -> ../shared, as the code expects)."""
    tree = base / "main"
    for rel in tree_files():
        src = ROOT / rel
        if not (src.is_file() or src.is_symlink()) or rel.startswith(".venv/"):
            continue                       # deleted in the working tree, or not ours
        dst = tree / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
    (tree / ".venv").symlink_to(ROOT / ".venv")
    for nm in ROOT.glob("**/node_modules"):
        rel = nm.relative_to(ROOT)
        if ".venv" in rel.parts or list(rel.parts).count("node_modules") > 1 or not (tree / rel.parent).is_dir():
            continue
        (tree / rel).symlink_to(nm)
    if (ROOT.parent / "shared").exists():
        (base / "shared").symlink_to(ROOT.parent / "shared")
    if (ROOT / "data" / "audit").is_dir():           # the audit's held-out windows (a cache)
        shutil.copytree(ROOT / "data" / "audit", tree / "data" / "audit")
    return tree


def apply_mutant(m: Mutant, tree: Path) -> None:
    if m.apply is not None:
        m.apply(tree)
        return
    path = tree / m.file
    text = path.read_text()
    n = text.count(m.old)
    if n != 1:
        raise RuntimeError(f"mutant {m.name}: {m.old!r} occurs {n} times in {m.file} (expected once): "
                           "the code changed, update the mutant")
    path.unlink()                          # never write through a link into the real tree
    path.write_text(text.replace(m.old, m.new))


def run_tests(tree: Path, commands: list[list[str]], log: Path) -> tuple[bool, str, float]:
    """(all passed, the first failure's summary, seconds). A test that skipped is reported in the
    summary ("skipped: ..."): it proved nothing either way."""
    env = dict(os.environ, PYTHONPATH=str(tree), LATENT_BRIDGE_REQUIRE_MAGENTA_JS="1",
               LATENT_BRIDGE_JACK_LOG=str(tree / "build" / "jack-test.log"))
    (tree / "build").mkdir(exist_ok=True)
    t0 = time.monotonic()
    skipped = []
    with open(log, "a") as out:
        for cmd in commands:
            out.write(f"\n$ {' '.join(cmd)}\n")
            out.flush()
            start = log.stat().st_size
            try:
                rc = subprocess.run(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=TIMEOUT_S).returncode
            except subprocess.TimeoutExpired:
                return False, f"{' '.join(cmd[-3:])}: timed out after {TIMEOUT_S} s", time.monotonic() - t0
            if rc != 0:
                return False, first_failure(log.read_text(), cmd), time.monotonic() - t0
            with open(log) as f:
                f.seek(start)
                skipped += [line.strip()[:200] for line in f if line.startswith("SKIPPED")]
    return True, ("skipped: " + "; ".join(skipped)) if skipped else "", time.monotonic() - t0


def first_failure(text: str, cmd: list[str]) -> str:
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("FAILED ") or s.startswith("ERROR ") or s.startswith("not ok "):
            return s[:160]
    return f"{' '.join(cmd[-3:])} exited non-zero"


def check_tree_imports(tree: Path) -> None:
    out = subprocess.run([PY, "-c", "import bridge, export_onnx; print(bridge.__file__); print(export_onnx.__file__)"],
                         cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True, text=True)
    paths = out.stdout.split()
    if out.returncode != 0 or len(paths) != 2 or not all(Path(p).resolve().is_relative_to(tree.resolve()) for p in paths):
        raise RuntimeError(f"the copy does not import its own code: {out.stdout}{out.stderr}")


# ---------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="only these mutants (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutants and their tests")
    ap.add_argument("--no-baseline", action="store_true", help="skip running the tests on an unmutated copy")
    ap.add_argument("--keep", action="store_true", help="keep the temporary trees and logs")
    args = ap.parse_args(argv)

    by_name = {m.name: m for m in MUTANTS}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        ap.error(f"unknown mutant(s) {unknown}; see --list")
    chosen = [by_name[n] for n in args.names] if args.names else MUTANTS
    if args.list:
        for m in chosen:
            print(f"{m.name:26s} [{m.group}] {m.what}")
            for cmd in m.tests:
                print(f"{'':28s}$ {shlex.join(cmd)}")
        return 0

    work = Path(tempfile.mkdtemp(prefix="lb-mutants-"))
    t_start = time.monotonic()
    print(f"{len(chosen)} mutants; trees and logs under {work}", flush=True)
    try:
        if not args.no_baseline:
            base = make_tree(work / "baseline")
            check_tree_imports(base)
            commands = []
            for m in chosen:
                commands += [c for c in m.tests if c not in commands]
            ok, why, secs = run_tests(base, commands, work / "baseline.log")
            print(f"baseline (the {len(commands)} test commands on an unmutated copy): "
                  f"{'pass' if ok else 'FAIL'} in {secs:.0f} s" + (f" ({why})" if ok and why else ""), flush=True)
            if not ok:
                print(f"  {why}\n  the tests fail without a mutant; see {work / 'baseline.log'}")
                args.keep = True
                return 2
            if not args.keep:
                shutil.rmtree(work / "baseline", ignore_errors=True)
        results = []
        for m in chosen:
            base = work / m.name
            log = work / f"{m.name}.log"
            try:
                tree = make_tree(base)
                apply_mutant(m, tree)
            except Exception as e:  # noqa: BLE001 - reported, and the run fails
                results.append((m, "error", str(e), 0.0))
                print(f"ERROR     {m.name:26s} {e}", flush=True)
                continue
            ok, why, secs = run_tests(tree, m.tests, log)
            status = "killed" if not ok else "inconclusive" if why.startswith("skipped") else "survived"
            results.append((m, status, why, secs))
            label = {"killed": "killed", "survived": "SURVIVED", "inconclusive": "SKIPPED"}[status]
            print(f"{label:9s} {m.name:26s} {secs:5.0f} s  {why or m.what}", flush=True)
            if not args.keep:
                shutil.rmtree(base, ignore_errors=True)
        killed = sum(1 for r in results if r[1] == "killed")
        survived = [r[0].name for r in results if r[1] == "survived"]
        errors = [r[0].name for r in results if r[1] in ("error", "inconclusive")]
        print(f"\n{killed} of {len(results)} mutants killed in {time.monotonic() - t_start:.0f} s"
              + (f"; SURVIVED: {', '.join(survived)}" if survived else "")
              + (f"; ERRORS / SKIPPED (not judged): {', '.join(errors)}" if errors else ""))
        if survived or errors:
            args.keep = True
            print(f"logs: {work}")
        return 1 if survived else 2 if errors else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
