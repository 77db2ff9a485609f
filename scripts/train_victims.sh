#!/usr/bin/env bash
# Trains the UT-Interaction victims (ut-lrcn, ut-c3d) with the stronger recipe, on both protocols:
# set1 -> set2 (one model each) and leave-one-sequence-out (10 folds per set, summary.json each).
# Runs on a GPU (DEV=cuda) and, slower, on the CPU (DEV=cpu; 1 thread unless THREADS is set).
# Deterministic for a SEED; resumable: rerun the same command after an interruption (a run
# continues from its -last state, finished LOSO folds are skipped).
#   UT=../shared/data/ut-interaction bash scripts/train_victims.sh          # packs the clips first
#   PACK=packs/ut48 DEV=cuda bash scripts/train_victims.sh                   # an existing pack (no PyAV)
#   DEV=cpu PROTOCOLS=loso MODELS=c3d FOLDS=set1 EPOCHS_LOSO=12 bash scripts/train_victims.sh   # the README's
#   DEV=cpu PROTOCOLS=loso MODELS=lrcn FOLDS=set1 EPOCHS_LOSO=10 CLIPS=2 LR=2e-3 ...           # CPU LOSO runs
set -euo pipefail
export PYTHONPATH=${PYTHONPATH:-src} PYTHONUNBUFFERED=1
PY=${PY:-python3}
DEV=${DEV:-cuda}
SEED=${SEED:-0}
OUT=${OUT:-runs/victims}
PACK=${PACK:-$OUT/pack}
MODELS=${MODELS:-"lrcn c3d"}
FOLDS=${FOLDS:-all}
EPOCHS_SPLIT=${EPOCHS_SPLIT:-25}
EPOCHS_LOSO=${EPOCHS_LOSO:-25}
CLIPS=${CLIPS:-3}                 # random windows / crops of every training clip per epoch
LR=${LR:-1e-3}
PROTOCOLS=${PROTOCOLS:-"split loso"}
if [ "$DEV" = cpu ]; then export OMP_NUM_THREADS=${THREADS:-1}; fi
WORKERS=$([ "$DEV" = cpu ] && echo 0 || echo 4)

if [ ! -f "$PACK/train.safetensors" ] || [ ! -f "$PACK/test.safetensors" ]; then
  # 48 frames spread over each clip at the model's 64x64 view; the sequence numbers are kept
  $PY -m vidshield pack --dataset ut-interaction --root "${UT:?set UT to the ut-interaction folder or PACK to a pack}" \
    --frames 48 --size 64 64 --out "$PACK"
fi
recipe=(--dataset clips --root "$PACK" --batch-size 8 --lr "$LR" --weight-decay 1e-4 --strong-augment
        --clips-per-video "$CLIPS" --label-smoothing 0.1 --device "$DEV" --num-workers "$WORKERS" --seed "$SEED")
for m in $MODELS; do
  for p in $PROTOCOLS; do
    if [ "$p" = split ]; then   # train on set1 (15 % of it for model selection), test on set2
      $PY -m vidshield train --model "$m-small" "${recipe[@]}" --epochs "$EPOCHS_SPLIT" --val-fraction 0.15 \
        --out "$OUT/split-$m" --resume --json | tail -n 12
    else                        # fold K: test on sequence K, select on the next one, train on 8
      $PY -m vidshield train --model "$m-small" "${recipe[@]}" --epochs "$EPOCHS_LOSO" --protocol loso \
        --fold "$FOLDS" --out "$OUT/loso-$m" --resume
    fi
  done
done
