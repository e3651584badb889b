#!/usr/bin/env bash
# The GPU check, THERE (the device machine: torch CUDA preinstalled, no
# network), from the repository root, with the folder of gather.sh carried:
#
#   bash tools/device/run_check.sh [BUNDLE]          (BUNDLE: .device_bundle)
#
# Installs the bundle (tools/device/install.sh), then runs
# tools/device/gpu_check.py, which writes its tables to $OUT.
# BUDGET (seconds, default 540) bounds the whole script: gpu_check starts no
# case after BUDGET - 60 s from the start, so a call with timeout_s 600 ends in
# time and keeps its tables. Logs in $OUT/run_check.log.
# tools/device/run_all.sh runs this and the accuracy table in one lease.
set -uo pipefail
BUNDLE=${1:-.device_bundle}
OUT=${OUT:-work_dirs/gpu_check}
export SITE=${SITE:-/tmp/mmlocal_site}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run_check.log") 2>&1
t0=$(date +%s)

bash "$(dirname "$0")/install.sh" "$BUNDLE" || exit 1
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}

limit=$(( ${BUDGET:-540} - 60 - ($(date +%s) - t0) ))
[ "$limit" -gt 30 ] || { echo "no time left for gpu_check (BUDGET ${BUDGET:-540} s)" >&2; exit 1; }
PYTHONUNBUFFERED=1 $PY tools/device/gpu_check.py --out "$OUT" --time-limit "$limit" "${@:2}"
rc=$?
echo "[run_check $(( $(date +%s) - t0 ))s] done (rc $rc)"
exit $rc
