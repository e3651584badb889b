#!/usr/bin/env bash
# The GPU speed check (issue 23), THERE (the device machine: torch CUDA
# preinstalled, no network), from the repository root, with the folder of
# gather.sh carried:
#
#   run(command="bash tools/device/run_speed.sh", carry=[".device_bundle"], timeout_s=600)
#
# Installs the bundle (tools/device/install.sh, ~160 s), then runs
# tools/device/gpu_speed.py: E2E and every method side by side (ResNet-32
# K=16, ResNet-110 K=55, DeepLabV3-R101 K=4), AMP, cudnn.benchmark and the
# caching allocator; its tables go to $OUT after every group (gpu_speed.md,
# gpu_speed.json), its log to $OUT/run_speed.log. BUDGET (seconds, default
# 570) bounds the whole script: no group starts after BUDGET - 90 s.
# Extra arguments go to gpu_speed.py (e.g. --sections step --only DGL).
# Here, the same code on tiny sizes: python tools/device/gpu_speed.py --device cpu --smoke
set -uo pipefail
BUNDLE=${BUNDLE:-.device_bundle}
OUT=${OUT:-work_dirs/gpu_speed}
export SITE=${SITE:-/tmp/mmlocal_site}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run_speed.log") 2>&1
t0=$(date +%s)

if [ "${INSTALL:-1}" = 1 ]; then
  bash "$(dirname "$0")/install.sh" "$BUNDLE" || exit 1
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null

limit=$(( ${BUDGET:-570} - 90 - ($(date +%s) - t0) ))
[ "$limit" -gt 30 ] || { echo "no time left for gpu_speed (BUDGET ${BUDGET:-570} s)" >&2; exit 1; }
PYTHONUNBUFFERED=1 $PY tools/device/gpu_speed.py --out "$OUT" --time-limit "$limit" "$@"
rc=$?
echo "[run_speed $(( $(date +%s) - t0 ))s] done (rc $rc)"
exit $rc
