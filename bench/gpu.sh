#!/usr/bin/env bash
# The benchmark table on a GPU machine, in one script (target: under 10 minutes).
#   CHECKPOINT=/path/to/ckpt bash bench/gpu.sh
# Needs: onnxruntime-gpu (CUDA provider), torch with CUDA, transformers; CHECKPOINT (a PyTorch
# token-classification checkpoint); the CoNLL-2003 test file (../shared/data or FASTTAG_SHARED_DATA).
# Exports: FP32 and FP16 may name ready fasttag exports of CHECKPOINT (for a machine without optimum);
# otherwise they are made beside OUT with `fasttag export` (needs the train extra).
# It also runs `fasttag bench` (the machine, speed with intervals, stages, padding) on both exports, on
# generated sentences and documents; the JSON lands in OUT. Then bench/stream.py: the GPU's session in a pool
# thread (the default) against in the caller's thread, and the batches one stream against chunk by chunk.
# fasttag need not be installed: without it, src/ is put on PYTHONPATH. Systems that cannot run
# there (pipeline-ort without optimum) are reported as such and the rest of the table still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import onnxruntime as ort
print("onnxruntime", ort.__version__, "providers:", ort.get_available_providers())
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
if ! python3 -c 'import onnxruntime as o, sys; sys.exit("CUDAExecutionProvider" not in o.get_available_providers())'; then
    echo "gpu.sh: this onnxruntime has no CUDAExecutionProvider; install onnxruntime-gpu built for this CUDA." >&2
    exit 3
fi
python3 -c 'import fasttag' 2>/dev/null || export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
: "${CHECKPOINT:?set CHECKPOINT to a PyTorch checkpoint folder}"
OUT=${OUT:-/tmp/fasttag-gpu}
mkdir -p "$OUT"
FP32=${FP32:-$OUT/fp32}
FP16=${FP16:-$OUT/fp16}
[ -f "$FP32/model.onnx" ] || python3 -m fasttag export "$CHECKPOINT" -o "$FP32" --overwrite
[ -f "$FP16/model.onnx" ] || python3 -m fasttag export "$CHECKPOINT" -o "$FP16" --precision fp16 --overwrite
# fp16 takes the int8 column's place on the GPU
timeout 420 python3 bench/compare.py --device cuda --checkpoint "$CHECKPOINT" --fp32 "$FP32" --int8 "$FP16" \
    --rounds 2 --json "$OUT/gpu.json" | tee "$OUT/gpu.md"
for EXPORT in "$FP32" "$FP16"; do
    NAME=$(basename "$EXPORT")
    for CORPUS in sentences documents; do
        timeout 60 python3 -m fasttag bench --model "$EXPORT" --device cuda --corpus "$CORPUS" --passes 3 -q \
            --json "$OUT/bench-$NAME-$CORPUS.json" | tee -a "$OUT/gpu.md" \
            || echo "gpu.sh: fasttag bench on $NAME ($CORPUS) failed or ran past 60s" | tee -a "$OUT/gpu.md"
    done
done
timeout 120 python3 bench/stream.py --model "$FP16" --device cuda --rows 20000 --rounds 2 | tee -a "$OUT/gpu.md" \
    || echo "gpu.sh: bench/stream.py failed or ran past 120s" | tee -a "$OUT/gpu.md"
