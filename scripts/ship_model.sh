#!/usr/bin/env bash
# Evaluate, measure directions, write the model card, export and picture a trained run:
#   scripts/ship_model.sh NAME [NOTES_MARKDOWN]   (run dir runs/NAME, data data/NAME)
# EVAL_MAX_EXAMPLES=N scores N windows per split (16-bar decoding is slow on CPU; default: all);
# Re-ship only when the audit improves (docs/training.md).
# DIRECTIONS_ARGS passes options to `export_onnx directions` (e.g. "--effect-examples 16").
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; notes=${2:-}
py=.venv/bin/python
data=$(python3 -c "import json; print(json.load(open('runs/$name/config.json'))['data'])")
limit=${EVAL_MAX_EXAMPLES:+--max-examples $EVAL_MAX_EXAMPLES}
$py -m export_onnx evaluate "runs/$name" --split validation --no-plot $limit >/dev/null
$py -m export_onnx evaluate "runs/$name" --split test $limit >/dev/null
# shellcheck disable=SC2086
$py -m export_onnx directions "runs/$name" --data "$data" ${DIRECTIONS_ARGS:-}
$py -m export_onnx model-card "runs/$name" --data "$data" --notes "$notes"
$py -m export_onnx export "runs/$name" --out "bridge/models/$name" --weights fp16
# the musical audit (audit.json + the card's "Musical audit" table): compare it with the previous
# package's before committing; re-ship only when it improves
$py -m export_onnx audit "bridge/models/$name"
mkdir -p docs/models
cp "runs/$name/curve.png" "docs/models/${name}_curve.png"
$py scripts/model_gallery.py "$name" --data "$data" --out docs/models
