"""The shared training loop (export_onnx.trainer) on a toy regression: the learning rate of each
step, clipping, the log's cadence and means, validation with best-checkpoint selection, the latest
and best files, the deadline, resuming the log."""
import json

import numpy as np
import pytest
import torch

from export_onnx.trainer import BatchStream, ExponentialDecay, Trainer, to_host


class Line(Trainer):
    """y = 3 x fitted by one weight; validation scores a fixed list (to drive best selection)."""

    def __init__(self, out_dir, scores=None, **loop):
        torch.manual_seed(0)
        model = torch.nn.Linear(1, 1, bias=False)
        loop = {"learning_rate": ExponentialDecay(0.1, 0.01, 0.5), "grad_clip": 1e9, "max_steps": 7,
                "log_every": 3, "validate_every": 2, "checkpoint_every": 4, "best_file": "best.pt",
                "latest_file": "latest.pt", "progress": False, **loop}
        super().__init__(model, torch.optim.SGD(model.parameters(), lr=1.0), out_dir, **loop)
        self.has_validation = scores is not None
        self.scores = list(scores or [])
        self.saved = []          # (file name, step, best) of every save
        self.seen_lr = []
        self.modes = []

    def train_step(self):
        self.seen_lr.append(self.optimizer.param_groups[0]["lr"])
        x = torch.tensor([[1.0], [2.0]])
        y_hat = self.model(x)
        return ((y_hat - 3 * x) ** 2).mean(), {"pair": torch.stack([y_hat[0, 0], y_hat[1, 0]])}

    def validate(self):
        self.modes.append((self.model.training, torch.is_grad_enabled()))
        return {"loss": self.scores.pop(0)}

    def save(self, path):
        self.saved.append((path.name, self.step, self.best))
        torch.save({"step": self.step}, path)


def _log(run_dir):
    return [json.loads(l) for l in (run_dir / "log.jsonl").read_text().splitlines()]


def test_cadence_means_and_best_selection(tmp_path):
    t = Line(tmp_path, scores=[5.0, 3.0, 3.0, 2.0])      # validations at steps 2, 4, 6, 7
    t.start_log()
    out = t.run()
    assert out == {"step": 7, "wall_time": t.wall, "best": 2.0, "validation": {"loss": 2.0}, "timed_out": False}
    # the learning rate of step s is the schedule at s (steps done before it)
    assert t.seen_lr == pytest.approx([(0.1 - 0.01) * 0.5 ** s + 0.01 for s in range(7)])
    # best: when the score improves (steps 2, 4, 7; a tie keeps the earlier); latest: every 4 steps and the last
    assert [(f, s) for f, s, _ in t.saved] == [("best.pt", 2), ("best.pt", 4), ("latest.pt", 4), ("best.pt", 7),
                                               ("latest.pt", 7)]
    assert t.best_step == 7 and t.modes == [(False, False)] * 4 and t.model.training
    log = _log(tmp_path)
    assert [(e["step"], e["split"]) for e in log] == [(2, "validation"), (3, "train"), (4, "validation"),
                                                      (6, "train"), (6, "validation"), (7, "train"),
                                                      (7, "validation")]
    first = log[1]
    assert set(first) == {"step", "split", "loss", "pair", "grad_norm", "lr", "steps_per_sec", "wall_time",
                          "cpu_time"}
    assert len(first["pair"]) == 2 and first["lr"] == pytest.approx(t.seen_lr[2])
    assert log[-2]["wall_time"] == t.wall and t.wall > 0


def test_means_are_over_the_steps_since_the_last_line(tmp_path):
    t = Line(tmp_path, max_steps=4, log_every=2, validate_every=100, checkpoint_every=100)
    losses = []
    step = t.train_step

    def recorded():
        loss, stats = step()
        losses.append(float(loss.detach()))
        return loss, stats
    t.train_step = recorded
    t.start_log()
    t.run()
    lines = _log(tmp_path)
    assert [e["loss"] for e in lines] == pytest.approx([np.mean(losses[:2]), np.mean(losses[2:])], rel=1e-6)


def test_without_validation_best_follows_latest(tmp_path):
    t = Line(tmp_path, max_steps=5, checkpoint_every=2)
    t.start_log()
    out = t.run()
    assert out["validation"] is None and out["best"] == float("inf")
    assert [(f, s) for f, s, _ in t.saved] == [("latest.pt", 2), ("best.pt", 2), ("latest.pt", 4), ("best.pt", 4),
                                               ("latest.pt", 5), ("best.pt", 5)]
    assert t.best_step == 5
    # a run that keeps only its best file (the surrogate) writes just that
    only = Line(tmp_path / "only", max_steps=3, checkpoint_every=2, latest_file=None)
    (tmp_path / "only").mkdir()
    only.start_log()
    only.run()
    assert [(f, s) for f, s, _ in only.saved] == [("best.pt", 2), ("best.pt", 3)]


def test_clipping_and_the_logged_norm(tmp_path):
    t = Line(tmp_path, max_steps=1, log_every=1, grad_clip=0.5, learning_rate=ExponentialDecay(1.0, 1.0, 1.0))
    before = t.model.weight.detach().clone()
    t.start_log()
    t.run()
    norm = _log(tmp_path)[0]["grad_norm"]
    assert norm > 0.5                                           # the norm before clipping is logged
    assert float((t.model.weight.detach() - before).abs()) == pytest.approx(0.5, rel=1e-5)   # lr 1 x the clipped gradient


@pytest.mark.timeout(60)
def test_deadline_stops_with_a_latest_checkpoint(tmp_path):
    t = Line(tmp_path, max_steps=10**9, checkpoint_every=10**6, validate_every=10**6, log_every=10**6,
             max_minutes=0.002)
    t.start_log()
    out = t.run()
    assert out["timed_out"] and 0 < out["step"] < 10**9
    assert t.saved[-1][:2] == ("latest.pt", out["step"])
    assert torch.load(tmp_path / "latest.pt")["step"] == out["step"]


def test_agree_to_stop_can_end_the_run(tmp_path):
    """What the processes of a torchrun job agree on decides, not this process's clock."""
    t = Line(tmp_path, max_steps=10, checkpoint_every=4)
    t.agree_to_stop = lambda stop: t.step >= 5
    t.start_log()
    out = t.run()
    # stopped between two checkpoints (4 and 8): the latest is written at the step it stopped at
    assert out["timed_out"] and out["step"] == 5
    assert [(f, s) for f, s, _ in t.saved] == [("latest.pt", 4), ("best.pt", 4), ("latest.pt", 5)]


def test_nothing_to_do_still_leaves_a_latest_checkpoint(tmp_path):
    t = Line(tmp_path, max_steps=0)
    t.start_log()
    assert t.run()["step"] == 0 and [f for f, _, _ in t.saved] == ["latest.pt"]
    t.saved.clear()
    t.run()                                      # the file is there now: not written again
    assert t.saved == []


def test_before_saving_runs_where_a_checkpoint_may_be_written(tmp_path):
    t = Line(tmp_path, scores=[1.0, 1.0, 1.0], max_steps=5, validate_every=2, checkpoint_every=3)
    calls = []
    t.before_saving = lambda: calls.append(t.step)
    t.start_log()
    t.run()
    assert calls == [2, 3, 4, 5, 5]              # validations 2, 4, 5; checkpoints 3, 5; after the loop


def test_resumed_log_keeps_the_lines_up_to_the_step(tmp_path):
    t = Line(tmp_path, max_steps=6, log_every=1, validate_every=100, checkpoint_every=100)
    t.start_log()
    t.run()
    again = Line(tmp_path)
    again.step = 4
    again.start_log(resume=True)
    assert [e["step"] for e in _log(tmp_path)] == [1, 2, 3, 4]
    again.start_log()                            # a new run: an empty log
    assert (tmp_path / "log.jsonl").read_text() == ""


def test_not_main_process_writes_nothing(tmp_path):
    t = Line(tmp_path, scores=[1.0] * 4, is_main=False)
    t.start_log()
    out = t.run()
    assert out["step"] == 7 and t.saved == [] and not (tmp_path / "log.jsonl").exists()
    assert out["validation"] is None


def test_to_host_keeps_shapes_and_values():
    values = {"a": torch.tensor(1.5), "b": torch.arange(6.0).reshape(2, 3), "c": torch.tensor([2.0], dtype=torch.float64)}
    out = to_host(values)
    assert out["a"].shape == () and float(out["a"]) == 1.5
    assert torch.equal(out["b"], values["b"]) and out["c"].dtype == torch.float32


def test_batch_stream_state_round_trip():
    s = BatchStream(7, 3, seed=1)
    for _ in range(4):
        s.next()
    other = BatchStream(7, 3, seed=2)
    other.load(s.state())
    assert all(np.array_equal(s.next(), other.next()) for _ in range(5))
    with pytest.raises(ValueError, match="fewer than one batch"):
        BatchStream(2, 3, seed=0)
