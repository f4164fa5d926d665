#!/usr/bin/env bash
# Training speed on a CUDA GPU, in one prepared run: lfm's emitted train.py against the plain HF
# Trainer + peft script on random-initialized Llamas (benchmarks/train_throughput.py), bf16,
# batch 8, alternating A/B:
#   - small (hidden 1024, 8 layers, vocab 32000; ~0.15B): LoRA and full fine-tuning, seq 512.
#     Launch-bound on a large GPU: the step time is the CPU's, so it shows per-step overhead.
#   - medium (hidden 2048, 16 layers; ~0.9B): LoRA, seq 1024. Compute-bound: it shows what
#     packing saves.
# then benchmarks/packed_attention.py on the GPU (padded vs per-example vs native packed sdpa).
#
#   benchmarks/train_throughput_gpu.sh compile   # here: bundles into .gpu/throughput, and
#                                                # wheels of what a CUDA image lacks (.gpu/wheels)
#   benchmarks/train_throughput_gpu.sh           # on the GPU box (carry .gpu): results in $OUT
#
# STEPS, REPEATS and SHAPES (default "small medium") must be the same for both calls (the run checks the bundles' steps).
# Results: $OUT/throughput_<shape>.json, packed_attention_cuda.json, versions.txt and logs.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
WORK=$PWD/.gpu/throughput
STEPS=${STEPS:-60}
REPEATS=${REPEATS:-2}
args() {  # shape -> the benchmark's arguments for it
  case $1 in
    small) echo --shape small --seq 512 --methods lora full ;;
    medium) echo --shape medium --seq 1024 --methods lora ;;
    tiny) echo --shape tiny --seq 256 --methods lora full ;;  # a quick check of this script
  esac
}
COMMON=(--device "${DEVICE:-cuda}" --steps "$STEPS" --repeats "$REPEATS" --records 2000)

if [ "${1:-}" = "compile" ]; then
  for shape in ${SHAPES:-small medium}; do
    # shellcheck disable=SC2046
    python3 benchmarks/train_throughput.py "${COMMON[@]}" $(args $shape) --compile-only "$WORK/$shape" || exit 1
  done
  # datasets (lfm.runtime reads the data with it) and its pure-Python dependencies.
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/wheels datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 || exit 1
  exit 0
fi

OUT=${OUT:-.gpu/out}; mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
need=$(python3 -c "import importlib.util as u; print(' '.join(m for m in ('datasets', 'dill', 'multiprocess') if u.find_spec(m) is None))")
if [ -n "$need" ]; then
  wheels=$(for n in $need; do ls .gpu/wheels/"$n"-*.whl; done)
  # shellcheck disable=SC2086
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $wheels || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import lfm.runtime" 2>/dev/null || python3 -m pip install -q --no-deps --no-build-isolation -e . || exit 1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
} 2>&1 | tee "$OUT/versions.txt"

status=0
for shape in ${SHAPES:-small medium}; do
  # shellcheck disable=SC2046
  python3 benchmarks/train_throughput.py "${COMMON[@]}" $(args $shape) --bundles "$WORK/$shape" \
    --out "$OUT/throughput_$shape.json" --workdir "$OUT" --keep --exclude-final-save \
    2>&1 | tee "$OUT/throughput_$shape.log" || status=1
done
python3 benchmarks/packed_attention.py --device "${DEVICE:-cuda}" --shape "${ATTENTION_SHAPE:-small}" --out "$OUT/packed_attention_cuda.json" \
  2>&1 | tee "$OUT/packed_attention.log" || status=1
# One archive of every run's log and of lfm's last metrics.jsonl per bundle (memory per step).
{ find "$OUT" -name 'log.txt' -o -name '*.log'; find "$WORK" -name metrics.jsonl; } |
  tar czf "$OUT/logs.tar.gz" -T - 2>/dev/null
find "$OUT" -mindepth 1 -maxdepth 1 -type d -name 'lfm-bench-*' -exec rm -rf {} +
exit $status
