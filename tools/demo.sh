#!/usr/bin/env bash
# `make demo`: synthetic data -> supervised training -> volume-level test.
# Generates and converts the synthetic spine data when absent, trains the
# demo config and prints the per-class volume Dice table of the test cases.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
CONFIG=${CONFIG:-configs/supervised/unet-s5-d16_fcn_1xb4-1k_synthetic-100pct-128px.py}
WORK_DIR=${WORK_DIR:-work_dirs/demo}
RAW=data/synthetic_raw
DATA=data/synthetic

start=$(date +%s)
[ -f "$RAW/dataset.json" ] || "$PY" tools/dataset_converters/synthetic.py "$RAW"
[ -f "$DATA/meta.json" ] || "$PY" tools/dataset_converters/nnunet.py "$RAW" "$DATA"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
ckpt=$(cat "$WORK_DIR/last_checkpoint")
"$PY" tools/test.py "$CONFIG" "$ckpt" --work-dir "$WORK_DIR/test" \
  --out "$WORK_DIR/test/per_case"
echo "[demo] finished in $(( $(date +%s) - start )) s; per-class table above," \
  "per-case Dice in $WORK_DIR/test/per_case"
