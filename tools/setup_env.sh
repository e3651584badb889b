#!/usr/bin/env bash
# Create (or update) the project's virtual environment: torch first, then mmcv
# compiled with its ops against that torch, then mmlocal and the toolboxes.
# Idempotent: every step is skipped when what it installs is already there.
set -euo pipefail
VENV=${1:-.venv}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONSTRAINTS="$ROOT/requirements/constraints.txt"
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check"

has() { "$PY" -c "$1" >/dev/null 2>&1; }

if ! has "import setuptools, sys; v = tuple(int(x) for x in setuptools.__version__.split('.')[:2]); sys.exit(not ((77, 0) <= v < (81, 0)))"; then
  echo "[setup] setuptools"
  $PIP install -q -c "$CONSTRAINTS" "setuptools>=77.0.3,<81" wheel
fi
if ! has "import torch"; then
  # The pin keeps pip on the local CPU wheel instead of a multi-GB CUDA download.
  echo "[setup] torch (CPU build, pinned)"
  $PIP install -q -c "$CONSTRAINTS" torch numpy
fi
if ! has "import mmcv.ops"; then
  echo "[setup] mmcv 2.1.0 built from source with its ops (several minutes on 2 cores)"
  $PIP uninstall -q -y mmcv mmcv-lite >/dev/null 2>&1 || true
  MMCV_WITH_OPS=1 FORCE_CUDA=${FORCE_CUDA:-0} MAX_JOBS=${MAX_JOBS:-2} \
    $PIP install -q --no-build-isolation -c "$CONSTRAINTS" mmcv==2.1.0
fi
if ! has "import mmcv.ops"; then
  echo "[setup] ERROR: mmcv was installed without its compiled ops (mmcv._ext missing)." >&2
  echo "        Reinstall it after torch: MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0" >&2
  exit 1
fi
if ! has "import mmlocal, pytest, mmseg, mmpretrain, mmdet"; then
  echo "[setup] mmlocal and the OpenMMLab toolboxes"
  $PIP install -q -c "$CONSTRAINTS" -e "$ROOT[tests]"
fi
"$PY" -c "import mmlocal, mmcv.ops, mmseg.models, mmpretrain.models, mmdet.models" \
  || { echo "[setup] ERROR: the OpenMMLab stack does not import; see the traceback above" >&2; exit 1; }
echo "[setup] ok: $("$PY" -c 'import torch, mmcv, mmlocal; print("torch", torch.__version__, "| mmcv", mmcv.__version__, "| mmlocal", mmlocal.__version__)')"
