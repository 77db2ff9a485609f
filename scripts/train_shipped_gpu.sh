#!/usr/bin/env bash
# Trains the shipped defaults that need a GPU, and measures GPU speed, in one run.
# Used on the lent GPU machine (PyTorch there, no PyAV): run from the repo root with the packed
# clip sets (`vidshield pack`) and ComDefend frames (`vidshield train-comdefend --save-frames`)
# in $PACKS. Writes the checkpoints as tar files into $OUT (or ./gpu-out).
#   PACKS=.devcarry bash scripts/train_shipped_gpu.sh        # SCALE=0.02 for a quick CPU dry run
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
PACKS=${PACKS:-.devcarry}
OUT=${OUT:-gpu-out}
DEV=${DEV:-cuda}
PY=${PY:-python3}
SCALE=${SCALE:-1}          # multiplies steps / epochs / clips
W=/tmp/vidshield-gpu
mkdir -p "$W" "$OUT"
n() { $PY -c "import sys; print(max(1, round(float(sys.argv[1]) * $SCALE)))" "$1"; }

command -v nvidia-smi >/dev/null && nvidia-smi -L
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
t0=$(date +%s)

# 1. ComDefend on 32x32 crops of synthetic + UT-Interaction frames (64x64 model view).
timeout 170 $PY -m vidshield train-comdefend --frames-file $PACKS/cd-train.safetensors \
  --val-frames-file $PACKS/cd-val.safetensors --steps $(n 6000) --batch-size 128 --val-every $(n 1000) \
  --device $DEV --seed 0 --out $W/comdefend --json | tail -25
echo "== comdefend done at $(( $(date +%s) - t0 ))s"

# 2. UT-Interaction (train set1, test set2) from the packed clip sets, from scratch.
timeout 70 $PY -m vidshield train --model c3d-small --dataset clips --root $PACKS/ut --epochs $(n 80) \
  --batch-size 16 --lr 1e-3 --val-fraction 0.15 --num-workers 4 --device $DEV --seed 0 --out $W/ut-c3d --json | tail -12
timeout 50 $PY -m vidshield train --model lrcn-small --dataset clips --root $PACKS/ut --epochs $(n 80) \
  --batch-size 16 --lr 1e-3 --val-fraction 0.15 --num-workers 4 --device $DEV --seed 0 --out $W/ut-lrcn --json | tail -12
echo "== ut models done at $(( $(date +%s) - t0 ))s"

# 3. Synthetic C3D-small (clips rendered on the fly by 12 workers).
timeout 140 $PY -m vidshield train --model c3d-small --dataset synthetic --num-videos $(n 2000) --test-videos $(n 500) \
  --epochs $(n 12) --batch-size 32 --lr 1e-3 --num-workers 12 --device $DEV --seed 0 --out $W/synthetic-c3d --json | tail -12
echo "== synthetic c3d done at $(( $(date +%s) - t0 ))s"

(cd $W && tar cf - ut-c3d.safetensors ut-c3d.json ut-lrcn.safetensors ut-lrcn.json) > $OUT/ut-models.tar
(cd $W && tar cf - synthetic-c3d.safetensors synthetic-c3d.json) > $OUT/synthetic-c3d.tar
(cd $W && tar cf - comdefend.safetensors comdefend.json) > $OUT/comdefend.tar

# 4. GPU speed (the reports quote these).
timeout 50 $PY benchmarks/bench_models.py --device $DEV --amp --full --min-seconds 2 | tee $OUT/bench_models.txt | tail -30
timeout 50 $PY benchmarks/bench_spatial.py --device $DEV --weights $W/comdefend --min-seconds 2 --json > $OUT/bench_spatial.json; tail -c 3000 $OUT/bench_spatial.json
echo "== all done at $(( $(date +%s) - t0 ))s"
