#!/usr/bin/env bash
# Install, THERE (the device machine: torch CUDA preinstalled, no network),
# what tools/device/gather.sh bundled here, into $SITE (default
# /tmp/mmlocal_site); callers then `export PYTHONPATH=$SITE`:
#
#   bash tools/device/install.sh [BUNDLE]            (BUNDLE: .device_bundle)
#
# 1. the bundle's wheels over the preinstalled torch (no index, no dependency
#    resolution: the bundle is complete);
# 2. mmcv 2.1.0 from its source with its ops, CPU kernels only, the GPU hidden
#    during the build (mmcv's CUDA build against this torch is untried; the
#    checks need no mmcv op on the GPU);
# 3. mmlocal itself.
set -uo pipefail
BUNDLE=${1:-.device_bundle}
SITE=${SITE:-/tmp/mmlocal_site}
PY=${PYTHON:-python3}
t0=$(date +%s)
step() { echo "[install $(( $(date +%s) - t0 ))s] $*"; }

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
step "done"
