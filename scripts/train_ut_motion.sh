#!/usr/bin/env bash
# The UT-Interaction victims with a motion input (ut-c3d-m, ut-lrcn-m): C3D and CNN+LSTM at 32x32
# that also see each frame's difference to the previous one (--motion), trained on this CPU.
# Leave-one-sequence-out over all 20 folds (summary.json per model) and set1 -> set2 (one model
# each, trained on all 60 set1 clips, the last epoch kept). Resumable: rerun the same command
# after an interruption (a run continues from its -last state, finished LOSO folds are skipped).
#   UT=DATA/ut-interaction nice bash scripts/train_ut_motion.sh
#   PROTOCOLS=split MODELS=c3d bash scripts/train_ut_motion.sh
set -euo pipefail
export PYTHONPATH=${PYTHONPATH:-src} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${THREADS:-2}
PY=${PY:-python3}
SEED=${SEED:-0}
OUT=${OUT:-runs/ut-motion}
PACK=${PACK:-$OUT/pack32}
MODELS=${MODELS:-"c3d lrcn"}
PROTOCOLS=${PROTOCOLS:-"split loso"}
EPOCHS=${EPOCHS:-30}

if [ ! -f "$PACK/train.safetensors" ] || [ ! -f "$PACK/test.safetensors" ]; then
  # 48 frames spread over each clip at the model's 32x32 view; the sequence numbers are kept
  $PY -m vidshield pack --dataset ut-interaction --root "${UT:?set UT to the ut-interaction folder or PACK to a pack}" \
    --frames 48 --size 32 32 --out "$PACK"
fi
recipe=(--size 32 32 --motion --dataset clips --root "$PACK" --epochs "$EPOCHS" --batch-size 8 --lr 2e-3
        --weight-decay 5e-4 --strong-augment --clips-per-video 4 --label-smoothing 0.1 --select last
        --device cpu --num-workers 0 --seed "$SEED")
for m in $MODELS; do
  for p in $PROTOCOLS; do
    if [ "$p" = split ]; then   # train on all of set1, test on set2
      $PY -m vidshield train --model "$m-small" "${recipe[@]}" --val-fraction 0 --out "$OUT/split-$m" --resume \
        | tail -n 3
    else                        # fold K: test on sequence K, train on the 8 others but the next one
      $PY -m vidshield train --model "$m-small" "${recipe[@]}" --protocol loso --out "$OUT/loso-$m" --resume \
        | tail -n 4
    fi
  done
done
