#!/usr/bin/env bash
# The evaluation on a CUDA GPU: a LoRA bundle whose train.py runs evaluate.py at its end
# (perplexity, text metrics, latency, a custom Q&A set, an lm-eval task on local data, gates),
# then the evaluation tests that load models, on the GPU.
#   benchmarks/gpu_eval_check.sh compile   # on a machine with PyPI: the bundle, and wheels of lfm
#                                          # and of the evaluation packages a CUDA image lacks
#   benchmarks/gpu_eval_check.sh           # on the GPU box (carry .venv/gpu-wheels, .venv/gpu-eval)
# Logs and results go to $OUT (default: .gpu/out).
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=.venv/gpu-eval/bundle
WHEELS=${WHEELS:-.venv/gpu-wheels}

if [ "${1:-}" = "compile" ]; then
  lfm compile benchmarks/gpu_check/eval.yaml -o "$BUNDLE" || exit 1
  python -m pip wheel -q --no-deps . -w "$WHEELS" || exit 1
  # The GPU image has torch, transformers, peft, sacrebleu and matplotlib (Python 3.12), not these.
  python -m pip wheel -q --no-deps -w "$WHEELS" sqlitedict word2number rouge-score || exit 1
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any -d "$WHEELS" \
    datasets==5.2.0 dill multiprocess evaluate lm-eval==0.4.13 nltk more-itertools pytablewriter \
    DataProperty mbstrdecoder chardet==6.0.0.post1 pathvalidate tabledata tcolorpy typepy==1.3.5 \
    pytz || exit 1
  exit 0
fi

OUT=${OUT:-.gpu/out}; mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [ -d "$WHEELS" ]; then python3 -m pip install -q --no-index --no-deps "$WHEELS"/*.whl || exit 1; fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers, peft, datasets, lm_eval, sacrebleu, pyarrow; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'datasets', datasets.__version__, 'lm_eval', lm_eval.__version__, 'pyarrow', pyarrow.__version__)"
} 2>&1 | tee "$OUT/versions.txt"
python3 -m lfm.runtime.tiny .gpu/tiny-model --overwrite >/dev/null || exit 1

status=0
start=$SECONDS
if python3 "$BUNDLE/train.py" >"$OUT/train_eval.log" 2>&1; then
  echo "PASS train.py + evaluate.py ($((SECONDS - start)) s)"
else
  echo "FAIL train.py + evaluate.py"; tail -30 "$OUT/train_eval.log"; status=1
fi
grep -h "^gate " "$OUT/train_eval.log"
cp "$BUNDLE"/output/eval/eval_results.json "$BUNDLE"/output/eval/eval_report.md "$OUT"/ 2>/dev/null
start=$SECONDS
if python3 -m pytest -q -p no:cacheprovider tests/evaluation/test_eval_model.py \
    tests/evaluation/test_eval_benchmarks.py tests/evaluation/test_eval_metrics.py \
    tests/evaluation/test_eval_gates.py >"$OUT/pytest.log" 2>&1; then
  echo "PASS evaluation tests on the GPU ($((SECONDS - start)) s): $(tail -1 "$OUT/pytest.log")"
else
  echo "FAIL evaluation tests on the GPU"; tail -40 "$OUT/pytest.log"; status=1
fi
exit $status
