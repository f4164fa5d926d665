#!/usr/bin/env bash
# The GPU paths of emitted bundles, on a machine with a CUDA GPU: LoRA in bf16 (python and
# accelerate launch), QLoRA with bitsandbytes 4-bit NF4, full fine-tuning in bf16 with
# gradient checkpointing, and a restart that resumes. Bundles are compiled beforehand
# (`benchmarks/gpu_check.sh compile` on any machine); the GPU box needs only lfm.runtime and
# the [train] packages. Logs and metrics go to $OUT (default: .gpu/out).
set -uo pipefail
cd "$(dirname "$0")/.."
CHECKS="lora_bf16 qlora full_bf16 hybrid prefix"

if [ "${1:-}" = "compile" ]; then
  for c in $CHECKS; do lfm compile "benchmarks/gpu_check/$c.yaml" -o ".gpu/bundles/$c" || exit 1; done
  exit 0
fi

OUT=${OUT:-.gpu/out}; mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)"
  python3 -c "import bitsandbytes; print('bitsandbytes', bitsandbytes.__version__)" 2>&1 | tail -1
} | tee "$OUT/versions.txt"
python3 -m lfm.runtime.tiny .gpu/tiny-model --overwrite >/dev/null || exit 1

status=0
run() {  # name, command...
  local name=$1; shift
  local start=$SECONDS
  if "$@" >"$OUT/$name.log" 2>&1; then echo "PASS $name ($((SECONDS - start)) s)"; else echo "FAIL $name"; tail -20 "$OUT/$name.log"; status=1; fi
}
for c in $CHECKS; do run "$c" python3 ".gpu/bundles/$c/train.py"; done
# The same LoRA bundle under accelerate launch, into a fresh output directory.
cp -r .gpu/bundles/lora_bf16 .gpu/bundles/lora_accelerate && rm -rf .gpu/bundles/lora_accelerate/output
run lora_accelerate accelerate launch --config_file .gpu/bundles/lora_accelerate/accelerate.yaml .gpu/bundles/lora_accelerate/train.py
# A restart after completion resumes from the newest checkpoint and ends at once.
run lora_restart python3 .gpu/bundles/lora_bf16/train.py
grep -h "Resuming" "$OUT/lora_restart.log" | head -1
for c in $CHECKS lora_accelerate; do
  python3 - "$c" <<'PY' | tee -a "$OUT/summary.txt"
import glob, json, sys
name = sys.argv[1]
for path in sorted(glob.glob(f".gpu/bundles/{name}/output/**/metrics.json", recursive=True)):
    m = json.load(open(path))
    losses, evals = [s["loss"] for s in m["steps"]], [e["eval_loss"] for e in m["eval"]]
    print(f"{path.split('bundles/')[1]}: steps={m['global_step']} loss {losses[0]:.3f} -> {losses[-1]:.3f} "
          f"eval {evals[0]:.3f} -> {evals[-1]:.3f} runtime={m['train_runtime']:.1f}s tokens/s={m['tokens_per_second']:.0f}")
PY
done
exit $status
