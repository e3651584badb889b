#!/usr/bin/env bash
# One GPU lease, used whole: THERE, from the repository root, with the bundle
# of gather.sh and the CIFAR-10 archive carried (a call runs at most 600 s):
#
#   run(command="bash tools/device/run_all.sh", carry=[".device_bundle", ".device_data"],
#       timeout_s=600)
#
# Here, beforehand: `bash tools/device/gather.sh` and
# `mkdir -p .device_data && cp ../shared/data/cifar10_jpg.tar.gz .device_data/`
# (both folders are git-ignored; 30 MiB together).
#
# 1. installs the bundle (install.sh: ~160 s on the H200 machine, mmcv's build);
# 2. gpu_check's methods section (train_step of every method in fp32/fp16/bf16,
#    ~50 s) and memory section (peak memory and step time, ~100 s);
# 3. the CIFAR-10 accuracy table of docs/benchmarks.md (ResNet-32 K=16, the
#    10,000-image subset, 10 epochs, batch 128, lr 0.1), ONE METHOD AT A TIME
#    in the order of ROWS: on 2026-11-30 seven trainings side by side on the one
#    GPU ran at 0.4-0.6 s per iteration each (time-sliced) and none finished;
#    what is left of one lease after 1-2 holds one or two methods;
# 4. the layer-wise probe of the trained checkpoints, if time is left;
# 5. packs the JSON records and logs.
# Each phase is bounded by what is left of BUDGET (default 570 s) and its
# results land in $OUT as soon as they exist, so a run cut short keeps them.
# Knobs: SKIP_CHECK=1 (only the accuracy phase: a lease for the table), ROWS
# (name:config-suffix pairs), INSTALL=0 (use the current Python), EPOCHS,
# SUBSET (training images), GPU_CHECK_ARGS (e.g. "--device cpu --smoke").
# $OUT gets at most 8 files: run_all.log, gpu_methods.md, gpu_memory.md,
# accuracy.md, accuracy.json, probe.md, probe.png, results.tar.gz.
set -uo pipefail
BUNDLE=${1:-.device_bundle}
DATA=${DATA:-.device_data}
OUT=${OUT:-work_dirs/device}
W=${WORK:-/tmp/mmlocal_device}
BUDGET=${BUDGET:-570}
export SITE=${SITE:-/tmp/mmlocal_site}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$W/acc" "$W/probe" "$W/gpu"
exec > >(tee -a "$OUT/run_all.log") 2>&1
t0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - t0) )); }
step() { echo "[run_all $(( $(date +%s) - t0 ))s] $*"; }

if [ "${INSTALL:-1}" = 1 ]; then
  bash "$(dirname "$0")/install.sh" "$BUNDLE" || exit 1
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
GC_ARGS=${GPU_CHECK_ARGS:-}
EPOCHS=${EPOCHS:-10}

# --- 2. the GPU check ---------------------------------------------------------
if [ "${SKIP_CHECK:-0}" != 1 ]; then
  step "gpu_check methods"
  $PY tools/device/gpu_check.py --sections methods --out "$OUT" --name gpu_methods $GC_ARGS \
    --json "$W/gpu/gpu_methods.json" --time-limit $(( $(left) - 60 )) > "$W/gpu/methods.log" 2>&1
  grep -E '^\[methods\]' "$W/gpu/methods.log"
  step "gpu_check memory"
  $PY tools/device/gpu_check.py --sections memory --out "$OUT" --name gpu_memory $GC_ARGS \
    --json "$W/gpu/gpu_memory.json" --time-limit $(( $(left) - 60 )) > "$W/gpu/memory.log" 2>&1
  grep -E '^\[memory\]' "$W/gpu/memory.log"
fi

# --- 3. accuracy, one method at a time ----------------------------------------
step "CIFAR-10 -> data/cifar10"
mkdir -p data/cifar10 && tar xzf "$DATA/cifar10_jpg.tar.gz" -C data/cifar10 || exit 1
C=configs/resnet32_cifar10
S="--data-root data/cifar10 --train-subset ${SUBSET:-10000} --epochs $EPOCHS --batch-size 128 \
--lr 0.1 --num-workers 4 --memory-iters 0 --work-dir $W/acc"
ROWS=${ROWS:-"e2e:e2e dgl:dgl_k16 infopro:infopro_k16 dgl_hpff:dgl_hpff_k16 \
infopro_hpff:infopro_hpff_k16 dgl_mlaan:dgl_mlaan_k16 infopro_own:infopro-contrast_k16"}
done_rows=()
for n in $ROWS; do
  name=${n%%:*}
  [ "$(left)" -gt 60 ] || { step "accuracy $name: no time left"; continue; }
  step "accuracy $name: at most $(( $(left) - 30 )) s"
  timeout $(( $(left) - 30 )) $PY tools/analysis/benchmark_accuracy.py "$C"_"${n#*:}".py \
    --names "$name" $S --out-json "$W/acc/$name.json" > "$W/acc/$name.log" 2>&1
  if [ -f "$W/acc/$name.json" ]; then
    done_rows+=("$W/acc/$name.json")
    $PY tools/analysis/benchmark_accuracy.py --from-json "${done_rows[@]}" \
      --out-md "$OUT/accuracy.md" --out-json "$OUT/accuracy.json" | tail -3
  else
    step "accuracy $name: NOT DONE"; grep -o 'Epoch(train) *\[[0-9]*\]\[ *[0-9]*/[0-9]*\]' \
      "$W/acc/$name.log" | tail -1
  fi
done

# --- 4. layer-wise probe ----------------------------------------------------
models=()
for n in $ROWS; do
  ck="$W/acc/${n%%:*}/epoch_$EPOCHS.pth"; [ -f "$ck" ] && models+=("${n%%:*}=${C}_${n#*:}.py:$ck")
done
if [ ${#models[@]} -gt 0 ] && [ "$(left)" -gt 40 ]; then
  step "layer-wise probe of ${#models[@]} models, at most $(( $(left) - 25 )) s"
  timeout $(( $(left) - 25 )) $PY tools/analysis/layerwise_probe.py "${models[@]}" --num-modules 16 \
    --data-root data/cifar10 --train-subset 5000 --test-subset 2000 --probe-epochs 30 \
    --out-prefix "$W/probe/layerwise_probe_resnet32_k16" > "$W/probe/probe.log" 2>&1
  cp "$W/probe/layerwise_probe_resnet32_k16.md" "$OUT/probe.md" 2>/dev/null
  cp "$W/probe/layerwise_probe_resnet32_k16.png" "$OUT/probe.png" 2>/dev/null
fi

# --- 5. pack ------------------------------------------------------------------
step "pack"
tar czf "$OUT/results.tar.gz" -C "$W" --exclude='*.pth' acc probe gpu 2>/dev/null
step "done"
