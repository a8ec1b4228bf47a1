#!/usr/bin/env bash
# Sets up everything latent-bridge needs on a fresh Debian machine, idempotently.
#   scripts/setup.sh runtime   -> .venv with the runtime (onnxruntime, OSC, MIDI); enough to serve
#   scripts/setup.sh dev       -> + torch (CPU build), onnx, test tools, liblo-tools, jackd2
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-runtime}
PY=${PYTHON:-python3}

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

[ -x .venv/bin/python ] || $PY -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$mode" = dev ]; then
  apt_install liblo-tools jackd2 libjack-jackd2-dev chromium chromium-driver
  # torch first and pinned: the local CPU build; an unpinned torch pulls GBs of CUDA packages.
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -e ".[train,test]"
  # magenta.js, the reference the Magenta-import parity tests run against (pinned by the lockfile)
  npm ci --prefix tests/magenta_js --ignore-scripts --no-audit --no-fund --loglevel=error
  # the device tests' devDependencies (acorn: the scripts parse as ES5, as Max's js object runs them)
  npm ci --prefix max_for_live/LatentBridge/tests --ignore-scripts --no-audit --no-fund --loglevel=error
else
  .venv/bin/python -m pip install -q -e .
fi
echo "setup ($mode) done: $(.venv/bin/python --version)"
