"""A long melody VAE over a shorter model's latent codes ("latent chain"): mel_16bar on mel_2bar.

The paper's hierarchical decoder: a conductor turns z into one embedding per segment and a core
decoder writes each segment's notes from its embedding. Here a segment is the short model's length
(2 bars), the embedding is a latent code of that model, and the core decoder *is* that model's
decoder, frozen. The long encoder reads the short model's posterior means of the segments (its
encoder, frozen, run on each 2-bar piece) with a BiLSTM; the conductor (z -> one code per segment)
is an LSTM plus a linear map into the short model's latent space.

Why: trained on tokens, the 16-bar model stayed at the trivial baseline on two CPU cores (6,762
steps: +0.027 over holding the first note; docs/models.md) — a 256-step decoder must learn melody
and 16-bar form at once. The short model already writes 2-bar melodies (held-out reconstruction
0.93); what is left to learn is 8 vectors per window, which trains in minutes. The package keeps
the runtime's format: the conductor's output shape says how many segments there are
(bridge.runtime.engine: `segments`, `steps_per_segment`), decoder_init and decoder_step are the
short model's graphs exported again from the same weights.

Training (`python -m export_onnx chain-codes`, then `train-chain`): every 16-bar window of the
long config's dataset is cut into segments and encoded by the short package's float encoder
(mu, sigma per segment; optionally each window transposed too). The long encoder and the conductor
are trained as a VAE on those codes: the reconstruction term is the negative log-likelihood of the
segment codes under N(predicted, sigma^2 + floor^2) per dimension (sigma: the short model's own
posterior width, so dimensions it ignores cost nothing), plus beta * max(KL - free bits, 0).
`chain-package` writes the package (export_onnx.export.write_package: parity checked graph by
graph), which is then audited like any other (`python -m export_onnx audit`).
"""
from __future__ import annotations


def add_parser(subparsers) -> None:
    from .cli import add_parser as add
    add(subparsers)
