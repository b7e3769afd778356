#!/usr/bin/env bash
# `make demo`: the whole CPS4 pipeline on synthetic data, sized for a CPU.
#   1. generate and convert the synthetic spine data (when absent);
#   2. stage 1: pretrain the vision-text model on the labelled 5%;
#   3. stage 2: supervised-only and CPS4 (on top of FixMatch, agreement
#      fusion) with the same batches and schedule;
#   4. test both on the test cases and print their volume Dice side by side.
#      The runs are short, so the student is scored: the EMA teacher
#      (momentum 0.01) still lags it after a few hundred iterations.
# Iterations are cut (DEMO_ITERS_STAGE1, DEMO_ITERS_STAGE2) to fit in about
# ten minutes on 2 cores; the full settings are the configs' own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
WORK_DIR=${WORK_DIR:-work_dirs/demo}
IT1=${DEMO_ITERS_STAGE1:-300}
IT2=${DEMO_ITERS_STAGE2:-250}
RAW=data/synthetic_raw
DATA=data/synthetic
VLM_CFG=configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct.py
T=unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py
SUP_CFG=configs/ssl/sup-only_$T
CPS4_CFG=configs/cps4/cps4-fixmatch_${T%.py}_agreement.py

schedule() {  # iterations -> schedule overrides (warm-up: a tenth)
  local warm=$(( $1 / 10 > 0 ? $1 / 10 : 1 ))
  echo "train_cfg.max_iters=$1 train_cfg.val_interval=$1" \
    "param_scheduler.0.end=$warm param_scheduler.1.begin=$warm" \
    "param_scheduler.1.end=$1 default_hooks.checkpoint.interval=$1" \
    "default_hooks.checkpoint.save_best=None"
}

start=$(date +%s)
[ -f "$RAW/dataset.json" ] || "$PY" tools/dataset_converters/synthetic.py "$RAW"
[ -f "$DATA/meta.json" ] || "$PY" tools/dataset_converters/nnunet.py "$RAW" "$DATA"

echo "[demo] stage 1: vision-text model, $IT1 iterations"
"$PY" tools/train.py "$VLM_CFG" --work-dir "$WORK_DIR/stage1" \
  --cfg-options $(schedule "$IT1")
vlm_ckpt=$(cat "$WORK_DIR/stage1/last_checkpoint")

for name in sup cps4; do
  if [ "$name" = sup ]; then cfg=$SUP_CFG; extra=""; else
    cfg=$CPS4_CFG; extra="model.vlm.checkpoint=$vlm_ckpt"; fi
  echo "[demo] stage 2: $name, $IT2 iterations"
  "$PY" tools/train.py "$cfg" --work-dir "$WORK_DIR/$name" \
    --cfg-options $(schedule "$IT2") $extra
  "$PY" tools/test.py "$cfg" "$(cat "$WORK_DIR/$name/last_checkpoint")" \
    --work-dir "$WORK_DIR/$name/test" \
    --cfg-options model.semi_test_cfg.predict_on=student $extra
done

"$PY" - "$WORK_DIR" <<'PYEOF'
import glob, json, os.path as osp, sys
work = sys.argv[1]
def metrics(name):
    files = sorted(f for f in glob.glob(osp.join(work, name, 'test', '*', '*.json'))
                   if osp.basename(osp.dirname(f)) + '.json' == osp.basename(f))
    return json.load(open(files[-1]))
sup, cps4 = metrics('sup'), metrics('cps4')
quality = osp.join(work, 'cps4', 'pseudo_label_quality.json')
print('\n[demo] test volume Dice of the students (synthetic, 5% labelled '
      'cases, 128 px)')
print(f"  supervised only            : mDice {sup['mDice']:.2f}")
print(f"  CPS4 (FixMatch + agreement): mDice {cps4['mDice']:.2f}")
if osp.isfile(quality):
    q = json.load(open(quality))['summary']
    print('  CPS4 pseudo labels vs hidden labels (last 100 iterations): '
          + ', '.join(f'{k} {v:.3f}' for k, v in sorted(q.items())))
PYEOF
echo "[demo] finished in $(( $(date +%s) - start )) s; outputs in $WORK_DIR"
