#!/usr/bin/env bash
# The distributed paths of emitted bundles on one CUDA GPU: DeepSpeed ZeRO-2, ZeRO-3 and plain
# bf16, full fine-tuning of the same random-initialised ~100M Llama (hidden 1024, 8 layers) for
# 40 steps of 8 x ~1,000 tokens. Records peak GPU memory and tokens/s per run in $OUT/*.json.
#
#   benchmarks/gpu_distributed.sh compile   # on any machine with lfm and pip: writes
#                                           # .gpu/bundles/dist_* and .gpu/wheels/ (deepspeed)
#   benchmarks/gpu_distributed.sh           # on the GPU box (no network needed): torch,
#                                           # transformers, accelerate, peft, datasets there
#
# The model and data are built on the GPU box (the first step), so only the small bundles and
# DeepSpeed's pure-Python wheel travel; deepspeed is installed from them when it is missing.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS="bf16 zero2 zero3"

if [ "${1:-}" = "compile" ]; then
  for r in $RUNS; do lfm compile "benchmarks/gpu_distributed/$r.yaml" -o ".gpu/bundles/dist_$r" || exit 1; done
  # What the GPU image lacks (it has torch, transformers, peft, accelerate, msgpack, ninja ...):
  # DeepSpeed (pure Python, built here), its pydantic, and datasets for lfm.runtime.
  python3 -m pip wheel -q --no-deps -w .gpu/wheels deepspeed==0.19.8 || exit 1
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/wheels hjson==3.1.0 pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 \
    typing-inspection==0.4.2 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 || exit 1
  exit 0
fi

OUT=${OUT:-.gpu/out}; mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# Carried wheels for what the image lacks go to /tmp/site; lfm itself from this checkout.
need=$(python3 - <<'PY'
import importlib.util as u
names = {"deepspeed": "deepspeed", "hjson": "hjson", "pydantic": "pydantic", "pydantic_core": "pydantic_core",
         "annotated_types": "annotated_types", "typing_inspection": "typing_inspection",
         "datasets": "datasets", "dill": "dill", "multiprocess": "multiprocess"}
print(" ".join(w for m, w in names.items() if u.find_spec(m) is None))
PY
)
if [ -n "$need" ]; then
  wheels=$(for n in $need; do ls .gpu/wheels/${n}-*.whl .gpu/wheels/${n//_/-}-*.whl 2>/dev/null; done | sort -u)
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $wheels || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import lfm.runtime" 2>/dev/null || python3 -m pip install -q --no-deps --no-build-isolation -e . || exit 1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers, accelerate, deepspeed; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'deepspeed', deepspeed.__version__)"
} | tee "$OUT/distributed_versions.txt"
python3 benchmarks/gpu_distributed_run.py build-model .gpu/bench-model >/dev/null || exit 1
python3 benchmarks/gpu_distributed_run.py build-data .gpu/bench-data.jsonl || exit 1

status=0
for r in $RUNS; do
  rm -rf ".gpu/bundles/dist_$r/output"
  start=$SECONDS
  # torchrun with one process: the launcher a DeepSpeed bundle expects (plain bf16 runs alike).
  if python3 -m torch.distributed.run --standalone --nproc_per_node 1 \
      benchmarks/gpu_distributed_run.py "$r" ".gpu/bundles/dist_$r" "$OUT" >"$OUT/dist_$r.log" 2>&1; then
    echo "PASS $r ($((SECONDS - start)) s): $(tail -1 "$OUT/dist_$r.log")"
  else
    echo "FAIL $r"; tail -25 "$OUT/dist_$r.log"; status=1
  fi
done
exit $status
