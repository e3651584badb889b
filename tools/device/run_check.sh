#!/usr/bin/env bash
# The GPU check, THERE (the device machine: torch CUDA preinstalled, no
# network), from the repository root, with the folder of gather.sh carried:
#
#   bash tools/device/run_check.sh [BUNDLE]          (BUNDLE: .device_bundle)
#
# 1. installs the bundle's wheels over the preinstalled torch into a target
#    folder (no index, no dependency resolution: the bundle is complete);
# 2. builds mmcv 2.1.0 from its source with its ops, CPU kernels only, the GPU
#    hidden during the build (mmcv's CUDA build against this torch is untried);
# 3. installs mmlocal there;
# 4. runs tools/device/gpu_check.py, which writes its tables to $OUT.
# BUDGET (seconds, default 540) bounds the whole script: gpu_check starts no
# case after BUDGET - 60 s from the start, so a call with timeout_s 600 ends in
# time and keeps its tables. Logs in $OUT/run_check.log.
set -uo pipefail
BUNDLE=${1:-.device_bundle}
OUT=${OUT:-work_dirs/gpu_check}
SITE=${SITE:-/tmp/mmlocal_site}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
LOG="$OUT/run_check.log"
exec > >(tee -a "$LOG") 2>&1
t0=$(date +%s)
step() { echo "[run_check $(( $(date +%s) - t0 ))s] $*"; }

[ -d "$BUNDLE" ] || { echo "no $BUNDLE: run 'bash tools/device/gather.sh' here and carry it" >&2; exit 2; }
PIP="$PY -m pip install -q --no-index --no-deps --no-cache-dir --disable-pip-version-check --target $SITE"
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}

step "wheels -> $SITE"
$PIP --no-compile "$BUNDLE"/*.whl || exit 1

step "mmcv from source: ops with CPU kernels, GPU hidden"
( export CUDA_VISIBLE_DEVICES= FORCE_CUDA=0 MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-16}
  $PIP --no-build-isolation "$BUNDLE"/mmcv-*.tar.gz ) || exit 1
$PY -c "import mmcv, mmcv.ops; print('mmcv', mmcv.__version__, 'ops ok')" || exit 1

step "mmlocal"
$PIP --no-build-isolation . || exit 1
$PY -c "import torch, mmlocal, mmseg, mmpretrain, mmdet; print('torch', torch.__version__, \
'cuda', torch.cuda.is_available(), '| mmlocal', mmlocal.__version__)" || exit 1

step "gpu_check"
limit=$(( ${BUDGET:-540} - 60 - ($(date +%s) - t0) ))
[ "$limit" -gt 30 ] || { echo "no time left for gpu_check (BUDGET ${BUDGET:-540} s)" >&2; exit 1; }
PYTHONUNBUFFERED=1 $PY tools/device/gpu_check.py --out "$OUT" --time-limit "$limit" "${@:2}"
rc=$?
step "done (rc $rc)"
exit $rc
