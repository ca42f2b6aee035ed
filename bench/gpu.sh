#!/usr/bin/env bash
# The benchmark table on a GPU machine, in one script (target: under 8 minutes).
# Needs: fasttag installed with the train extra and onnxruntime-gpu; CHECKPOINT (a PyTorch token-
# classification checkpoint) and ../shared/data. Exports fp32 and fp16 (GPU) beside it first.
#   CHECKPOINT=/path/to/ckpt bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import onnxruntime as ort
print("onnxruntime", ort.__version__, "providers:", ort.get_available_providers())
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
: "${CHECKPOINT:?set CHECKPOINT to a PyTorch checkpoint folder}"
OUT=${OUT:-/tmp/fasttag-gpu}
mkdir -p "$OUT"
[ -f "$OUT/fp32/model.onnx" ] || fasttag export "$CHECKPOINT" -o "$OUT/fp32" --overwrite
[ -f "$OUT/fp16/model.onnx" ] || fasttag export "$CHECKPOINT" -o "$OUT/fp16" --precision fp16 --overwrite
# fp16 takes the int8 column's place on the GPU
timeout 420 python bench/compare.py --device cuda --checkpoint "$CHECKPOINT" --fp32 "$OUT/fp32" --int8 "$OUT/fp16" \
    --rounds 2 --json "$OUT/gpu.json" | tee "$OUT/gpu.md"
