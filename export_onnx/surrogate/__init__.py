"""Accompaniment in latent space: a melody-only SURROGATE ENCODER for a trio MusicVAE.

Method ("Generating Musical Accompaniment in Latent Space"): the trio model's encoder maps a whole
trio (lead, bass, drums) to a posterior N(mu, sigma). A second encoder of the same BiLSTM family
(hierarchical for 16 bars) sees only the lead track and learns to predict that latent. For a new
melody: predict z, decode a full trio with the trio decoder, and put the original melody back in
place of the decoded lead (bridge/runtime/accompany.py does that at runtime).

    python -m export_onnx train-surrogate --trio runs/trio_16bar --data data/trio_16bar \
        --out runs/trio_accomp [--loss mse|nll] [--max-steps N] [--package bridge/models/trio_16bar]
    python -m export_onnx add-surrogate runs/trio_accomp --package bridge/models/trio_16bar

Losses (targets come from the frozen trio encoder on the same, pitch-augmented, batch):
- `mse`: mean squared error between the surrogate's mu and the trio posterior mean;
- `nll`: expected Gaussian negative log-likelihood of z ~ N(mu, sigma) under the surrogate's
  N(mu_hat, sigma_hat), in closed form: log sigma_hat + ((mu - mu_hat)^2 + sigma^2) / (2 sigma_hat^2).
  Dimensions the trio posterior pins down (small sigma) then weigh more than ones it leaves at the prior.
With `mse` the surrogate's sigma head is not trained (only mu is used at runtime).

Weights start from the trio encoder (`--init trio`): every parameter of the same shape is copied,
and the first LSTM's kernels keep the rows of the lead one-hot and of the recurrent state (the
bass and drum rows are dropped). `--init random` starts from scratch.

Run directory: `surrogate.pt` (best on the validation split), `log.jsonl`, `metrics.json` (held-out
evaluation on the test split: latent MSE, baselines, and step accuracy of the tracks decoded from
the predicted z versus from the true z).

Package: `add_surrogate_to_package(run_dir, package_dir)` writes `surrogate_encoder.onnx`
(inputs `inputs (B, steps, lead_classes)` one-hot of the lead track; outputs `mu`, `sigma` (B, z)),
checks it against torch (<= 1e-4), checks that the package's encoder is the trio model the
surrogate was trained against, and adds the graph (role `surrogate_encoder`), its sha256 and a
`surrogate` section to model.json.

The modules, one role each:
    encoder.py    SurrogateEncoder, init_from_trio, surrogate_loss, save/load_surrogate (surrogate.pt)
    metrics.py    latent_metrics (validation), evaluate (held-out report), predict, trio_posterior
    training.py   SurrogateTrainer (on export_onnx.trainer.Trainer), train_surrogate
    graph.py      export_surrogate_graph: the ONNX graph, checked against torch
    package.py    add_surrogate_to_package, surrogate_card_section
    cli.py        the train-surrogate and add-surrogate commands
    fixtures.py   tiny_accompany_package, save_trio_checkpoint (tests)
"""
from __future__ import annotations

from ..model_card import SURROGATE_HEADING as CARD_HEADING
from .cli import add_parser
from .encoder import (CHECKPOINT, FORMAT, LOSSES, SurrogateEncoder, init_from_trio, load_surrogate, save_surrogate,
                      surrogate_loss)
from .fixtures import save_trio_checkpoint, tiny_accompany_package
from .graph import GRAPH_FILE, OPSET, ROLE, TOLERANCE, export_surrogate_graph
from .metrics import evaluate, latent_metrics, predict, trio_posterior
from .package import add_surrogate_to_package, surrogate_card_section
from .training import SurrogateTrainer, train_surrogate

__all__ = ["CARD_HEADING", "CHECKPOINT", "FORMAT", "GRAPH_FILE", "LOSSES", "OPSET", "ROLE", "TOLERANCE",
           "SurrogateEncoder", "SurrogateTrainer", "add_parser", "add_surrogate_to_package", "evaluate",
           "export_surrogate_graph", "init_from_trio", "latent_metrics", "load_surrogate", "predict",
           "save_surrogate", "save_trio_checkpoint", "surrogate_card_section", "surrogate_loss",
           "tiny_accompany_package", "train_surrogate", "trio_posterior"]
