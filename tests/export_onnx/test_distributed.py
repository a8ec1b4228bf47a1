"""Data-parallel training under torchrun on CPU (gloo, 2 processes, one machine), and its exact resume.

Two torchrun launches, shared by the tests of this module (starting torch in three processes is most
of the time): launch A trains three runs one after the other in the same process group
(`plain`: every per-process random draw off; `straight`: everything on, 8 steps; `half`: the same run
stopped at step 4; `timed`: stopped by --max-minutes), launch B - fresh processes - resumes `half` to
step 8. Every run records each
process's example indices per step and its parameters' digest at the end (`record_batches`).

What a 2-process run equals (docs/training.md, "Training past one machine"): the data order is one
global stream and a process's rows are its slice of each global batch, so the examples of each step
are the same as in a 1-process run at the same global batch and seed. The per-process random draws
are not: process r draws z noise, scheduled sampling and word dropout from its own torch generator
(seed + 1 + 1000 r) and its transpositions from its own NumPy generator, for its own rows, so with
any of them on the two runs are different (equally valid) samples. With all of them off (z = mu, no
sampling, no dropout, no augmentation) the runs compute the same mean gradient, summed in another
order (gloo averages two half-batch means; one process takes the mean of the whole batch): the
parameters agree within ATOL after STEPS steps of Adam.
"""
import json
import os
import subprocess
import sys
import time
from functools import partialmethod
from pathlib import Path

import numpy as np
import pytest
import torch

from export_onnx.dataset import SplitWriter, load_split
from export_onnx.model import MusicVAE, load_checkpoint
from export_onnx.train import parameter_digest, train

ROOT = Path(__file__).resolve().parents[2]
SIZE = dict(enc_units=8, dec_units=8, dec_layers=1, z_size=4)
STEPS = 6          # the `plain` run; the global batch of 8 over 40 examples crosses an epoch
ATOL = 1e-5        # measured: max |difference| ~1e-8 after 6 steps (summation order only)
NOISE_OFF = dict(sampling_schedule="constant", augment_semitones=(0, 0), input_dropout=0.0)
NOISE_ON = dict(final_sampling_probability=0.8, sampling_ramp=0.5, free_bits=1.0, beta_warmup=0.5,
                max_beta=0.5, input_dropout=0.2)          # + z noise and augmentation (the recipe's)
COMMON = dict(config_name="mel_2bar", batch_size=8, seed=3, threads=1, progress=False, log_every=1,
              validate_every=3, checkpoint_every=100, record_batches=True)

DRIVER = '''
import json, sys
from functools import partialmethod
from export_onnx.configs import ModelSize
from export_onnx.model import MusicVAE
from export_onnx.train import train
forward = MusicVAE.forward
for run in json.loads(open(sys.argv[1]).read()):
    # z = mu when z noise is off (the one per-process draw the recipe cannot switch off)
    MusicVAE.forward = forward if run.pop("z_noise") else partialmethod(forward, sample_z=False)
    run["model_size"] = ModelSize(**run["model_size"])
    run["recipe_changes"] = {k: tuple(v) if isinstance(v, list) else v for k, v in run["recipe_changes"].items()}
    train(**run)
'''


def _melodies(rng, n, steps=32):
    t = rng.integers(2, 40, (n, steps, 1))
    t[rng.random((n, steps, 1)) < 0.4] = 0
    t[rng.random((n, steps, 1)) < 0.1] = 1
    return t.astype(np.uint16)


def _dataset(root: Path):
    """The same 40 training windows twice: sharded (shards of 7, memory-mapped by the trainer) and
    as the single-file set; one validation split."""
    rng = np.random.default_rng(11)
    train_tokens, val_tokens = _melodies(rng, 40), _melodies(rng, 6)
    types = {"tokens": (np.uint16, (32, 1)), "song": (np.int32, ())}
    for d, shard in ((root / "sharded", 7), (root / "npz", None)):
        for split, tok in (("train", train_tokens), ("validation", val_tokens)):
            w = SplitWriter(d, split, types, shard)
            for a in range(0, len(tok), 9):     # file by file, as a dataset build adds them
                w.add(tokens=tok[a:a + 9], song=np.arange(a, min(a + 9, len(tok)), dtype=np.int32))
            w.close()
    return root / "sharded", root / "npz"


def _torchrun(runs: list, workdir: Path, name: str) -> float:
    spec = workdir / f"{name}.json"
    spec.write_text(json.dumps(runs))
    driver = workdir / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("LATENT_BRIDGE_RECORD_BATCHES", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0", "--max-restarts", "0",
           str(driver), str(spec)]
    t0 = time.time()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, f"torchrun failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}"
    return time.time() - t0


def _run(out: Path, data: Path, steps: int, recipe: dict, z_noise: bool, **kw) -> dict:
    return {**COMMON, "data_dir": str(data), "out_dir": str(out), "max_steps": steps, "model_size": SIZE,
            "recipe_changes": recipe, "z_noise": z_noise, **kw}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    sharded, npz = _dataset(root)
    seconds = {"A": _torchrun([
        _run(root / "plain", sharded, STEPS, NOISE_OFF, False),
        _run(root / "straight", sharded, 8, NOISE_ON, True, plan_steps=8),
        _run(root / "half", sharded, 4, NOISE_ON, True, plan_steps=8),
        _run(root / "timed", sharded, 10**6, NOISE_ON, True, max_minutes=0.03, validate_every=10**6,
             checkpoint_every=10**6),
    ], root, "A")}
    half_at_4 = torch.load(root / "half" / "latest.pt", weights_only=False)
    seconds["B"] = _torchrun([_run(root / "half", sharded, 8, NOISE_ON, True, plan_steps=8, resume=True)], root, "B")
    print(f"torchrun launches: {seconds}")
    return {"root": root, "sharded": sharded, "npz": npz, "half_at_4": half_at_4}


def _records(run_dir: Path, rank: int) -> tuple[dict, dict]:
    lines = [json.loads(l) for l in (run_dir / f"rank{rank}_indices.jsonl").read_text().splitlines()]
    steps = {e["step"]: e["indices"] for e in lines if not e.get("final")}
    finals = [e for e in lines if e.get("final")]
    assert len(finals) == 1 and len(steps) == len(lines) - 1
    return steps, finals[0]


def test_ranks_agree_and_split_each_global_batch(runs, monkeypatch, tmp_path):
    plain = runs["root"] / "plain"
    r0, f0 = _records(plain, 0)
    r1, f1 = _records(plain, 1)
    # (a) every process ends with bit-identical weights, and rank 0 checkpointed those
    assert f0["step"] == f1["step"] == STEPS and f0["params_sha256"] == f1["params_sha256"]
    model, info = load_checkpoint(plain, "latest")
    assert info["step"] == STEPS and info["world_size"] == 2
    assert parameter_digest(model) == f0["params_sha256"]
    s0, s1 = _records(runs["root"] / "straight", 0)[1], _records(runs["root"] / "straight", 1)[1]
    assert s0["params_sha256"] == s1["params_sha256"]      # also with every random draw on

    # the 1-process reference: same global batch, seed and draws switched off, from the npz set
    monkeypatch.setattr(MusicVAE, "forward", partialmethod(MusicVAE.forward, sample_z=False))
    ref_dir = tmp_path / "single"
    train(data_dir=runs["npz"], out_dir=ref_dir, max_steps=STEPS, model_size=_size(),
          recipe_changes=NOISE_OFF, **COMMON)
    ref, _ = _records(ref_dir, 0)

    # (b) each global batch is split into disjoint halves, rank 0 the first: the 1-process batch
    assert sorted(r0) == sorted(r1) == sorted(ref) == list(range(1, STEPS + 1))
    for step in ref:
        assert len(r0[step]) == len(r1[step]) == 4
        assert not set(r0[step]) & set(r1[step])
        assert r0[step] + r1[step] == ref[step]
    seen = [i for step in sorted(ref) for i in ref[step]]
    assert sorted(seen[:40]) == list(range(40))             # the first epoch covers every example once

    # (c) the weights agree with the 1-process run within ATOL (not bit for bit: summation order)
    ddp = torch.load(plain / "latest.pt", weights_only=False)["model"]
    single = torch.load(ref_dir / "latest.pt", weights_only=False)["model"]
    diff = max(float((ddp[k] - single[k]).abs().max()) for k in single)
    moved = max(float((single[k] - _initial()[k]).abs().max()) for k in single)
    print(f"max |2 processes - 1 process| = {diff:.3g} (weights moved by up to {moved:.3g})")
    assert diff <= ATOL and moved > 100 * ATOL


def test_resume_under_torchrun_is_exact(runs):
    root = runs["root"]
    a = torch.load(root / "straight" / "latest.pt", weights_only=False)
    b = torch.load(root / "half" / "latest.pt", weights_only=False)
    at4 = runs["half_at_4"]
    assert at4["step"] == 4 and a["step"] == b["step"] == 8
    # the checkpoint at step 4 holds both processes' streams, and they differ (so restoring rank 0's
    # to both, as before, would not be exact)
    ranks = at4["rng"]["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch_gen"], ranks[1]["torch_gen"])
    assert ranks[0]["aug"] != ranks[1]["aug"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k, v in a["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg"], b["optimizer"]["state"][k]["exp_avg"])
        assert torch.equal(v["exp_avg_sq"], b["optimizer"]["state"][k]["exp_avg_sq"])
    for x, y in zip(a["rng"]["ranks"], b["rng"]["ranks"]):
        assert torch.equal(x["torch_gen"], y["torch_gen"]) and x["aug"] == y["aug"]
    assert a["best"] == b["best"] and a["plan"] == b["plan"]
    for rank in (0, 1):   # every process saw the same rows at every step, and ended with the same weights
        (sa, fa), (sb, fb) = _records(root / "straight", rank), _records(root / "half", rank)
        assert sa == sb and sorted(sb) == list(range(1, 9))
        assert fa["params_sha256"] == fb["params_sha256"]
    log = lambda d: [(e["step"], e["loss"]) for e in map(json.loads, (d / "log.jsonl").read_text().splitlines())
                     if e["split"] == "train"]
    assert log(root / "half") == log(root / "straight") and len(log(root / "straight")) == 8
    # the comparison is not vacuous: the draws were on (sampling, dropout, z noise, augmentation)
    steps = [json.loads(l) for l in (root / "straight" / "log.jsonl").read_text().splitlines()]
    assert max(e.get("p_sample", 0) for e in steps) > 0


def test_sharded_split_reads_like_the_npz(runs):
    a = load_split(runs["npz"], "train")
    b = load_split(runs["sharded"], "train", mmap=True)
    assert len(b["tokens"]) == 40 and b["tokens"].shape == a["tokens"].shape
    idx = np.array([39, 0, 7, 6, 13, 14, 21, 3, -1])
    assert np.array_equal(b["tokens"][idx], a["tokens"][idx]) and np.array_equal(b["song"][idx], a["song"][idx])
    assert np.array_equal(b["tokens"][5:30:4], a["tokens"][5:30:4])
    assert np.array_equal(np.asarray(b["tokens"]), a["tokens"])
    assert len(json.loads((runs["sharded"] / "train.shards.json").read_text())["shards"]) == 6


def _size():
    from export_onnx.configs import ModelSize
    return ModelSize(**SIZE)


def _initial():
    torch.manual_seed(COMMON["seed"])
    from export_onnx.configs import get_config
    return MusicVAE(get_config("mel_2bar"), _size()).state_dict()


def test_max_minutes_stops_every_process_at_the_same_step(runs):
    """The deadline is agreed on each step (a process that stopped alone would leave the others
    waiting in the next gradient all-reduce); rank 0 checkpoints the step they stopped at."""
    f0, f1 = _records(runs["root"] / "timed", 0)[1], _records(runs["root"] / "timed", 1)[1]
    assert 0 < f0["step"] == f1["step"] < 10**6 and f0["params_sha256"] == f1["params_sha256"]
    assert torch.load(runs["root"] / "timed" / "latest.pt", weights_only=False)["step"] == f0["step"]


def test_device_script_matches_the_train_command_line():
    """scripts/device_train.sh passes only options that `train` / `slim-checkpoint` have."""
    import re
    from export_onnx.__main__ import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    script = (ROOT / "scripts" / "device_train.sh").read_text()
    for command in ("train", "slim-checkpoint"):
        known = {o for a in sub[command]._actions for o in a.option_strings}
        call = script[script.index(f"-m export_onnx {command}"):]
        call = call[:call.index(">") if command == "train" else call.index("\n")]
        if command == "train":   # and the options the script adds per model (start=(...))
            call += " ".join(l for l in script.splitlines() if re.search(r"\bstart\+?=\(", l))
        used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", call))
        assert used and used <= known, (command, used - known)
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "device_train.sh")]).returncode == 0
