#!/usr/bin/env bash
# Train several models at once on a lent GPU machine (device tool), inside one command's time limit.
#   bash scripts/device_train.sh MINUTES NAME:BATCH [NAME:BATCH ...]
# Runs `train --config NAME --data data/NAME --out runs/NAME --resume --max-minutes MINUTES` for each,
# in parallel on the one GPU. A warm machine still has runs/NAME/latest.pt and continues exactly; a
# fresh one starts from the weights-only checkpoint .gpu/NAME.pt when carried, else from the package
# $INIT_FROM/NAME when INIT_FROM is set (e.g. INIT_FROM=bridge/models: --init-from), else from scratch.
# The run-sized schedules are planned for this lease's MINUTES unless PLAN_MINUTES (or --plan-steps in
# TRAIN_ARGS) sizes them for a run spread over several leases; a resumed run keeps its checkpoint's plan.
# Brings back, under $OUT: NAME.pt (best weights, fp16) per model and logs.tar (logs + configs).
set -u
minutes=$1; shift
out=${OUT:-out/device}; mkdir -p "$out" runs
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
if [ -f .gpu/logs.tar ] && [ ! -d runs/.warm ]; then tar -xf .gpu/logs.tar; fi
mkdir -p runs/.warm
pids=()
for spec in "$@"; do
  name=${spec%%:*}; batch=${spec#*:}
  mkdir -p "runs/$name"
  if [ ! -f "runs/$name/latest.pt" ] && [ -f ".gpu/$name.pt" ]; then cp ".gpu/$name.pt" "runs/$name/latest.pt"; fi
  start=()
  if [ ! -f "runs/$name/latest.pt" ] && [ -n "${INIT_FROM:-}" ]; then start=(--init-from "$INIT_FROM/$name"); fi
  if [ -n "${PLAN_MINUTES:-}" ]; then start+=(--plan-minutes "$PLAN_MINUTES"); fi
  $py -m export_onnx train --config "$name" --data "data/$name" --out "runs/$name" --resume \
    --batch-size "$batch" --max-minutes "$minutes" --max-steps 1000000 --threads 2 --val-examples 1024 \
    --validate-every 250 --checkpoint-every 250 --log-every 50 ${start[@]+"${start[@]}"} ${TRAIN_ARGS:-} \
    > "runs/$name.device.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for spec in "$@"; do
  name=${spec%%:*}
  echo "== $name"; grep -v '^\s*$' "runs/$name.device.log" | tr '\r' '\n' | tail -n 3
  src=runs/$name/best.pt; [ -f "$src" ] || src=runs/$name/latest.pt
  [ -f "$src" ] && $py -m export_onnx slim-checkpoint "$src" "$out/$name.pt" --half
  grep '"validation"' "runs/$name/log.jsonl" | tail -n 2 | cut -c1-400
done
tar -cf "$out/logs.tar" runs/*/log.jsonl runs/*/config.json runs/*.device.log
ls -la "$out"
