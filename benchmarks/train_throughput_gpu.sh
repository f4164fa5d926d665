#!/usr/bin/env bash
# lfm's emitted train.py against the plain HF Trainer + peft script on a CUDA GPU, with a real
# small architecture (a random-initialized Llama: hidden 1024, 8 layers, vocab 32000; about
# 0.2B parameters), LoRA and full fine-tuning, bf16, batch 8, seq 512, 60 steps, 2 repeats
# alternating A/B. Needs only lfm.runtime and the [train] packages on the GPU machine: the
# bundles are compiled beforehand, on any machine, into .gpu/throughput/ (carry it along):
#
#   benchmarks/train_throughput_gpu.sh compile     # here: compiles the two bundles
#   benchmarks/train_throughput_gpu.sh             # on the GPU box: results in $OUT
#
# Results: $OUT/train_throughput_gpu.json (default OUT=.gpu/out) and a log per run.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=.gpu/throughput
ARGS=(--device cuda --shape small --seq 512 --steps "${STEPS:-60}" --repeats "${REPEATS:-2}" --records 2000)

if [ "${1:-}" = "compile" ]; then
  exec python3 benchmarks/train_throughput.py "${ARGS[@]}" --compile-only "$WORK"
fi
OUT=${OUT:-.gpu/out}; mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# lfm.runtime from this checkout when lfm is not installed (the GPU box has only [train]).
python3 -c "import lfm.runtime" 2>/dev/null || export PYTHONPATH="$PWD/.gpu/pythonpath${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p .gpu/pythonpath/lfm && ln -sfn "$PWD/runtime" .gpu/pythonpath/lfm/runtime
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
} | tee "$OUT/versions.txt"
python3 benchmarks/train_throughput.py "${ARGS[@]}" --bundles "$WORK" --out "$OUT/train_throughput_gpu.json" \
  --workdir "$OUT" --exclude-final-save 2>&1 | tee "$OUT/train_throughput_gpu.log"
