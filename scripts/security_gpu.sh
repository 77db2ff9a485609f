#!/usr/bin/env bash
# The full security evaluation (issue 13) on a GPU: 48 test clips, 100 steps, 2 restarts, every
# pipeline configuration (ComDefend inside the attack loop), SPSA, transfer and the budget sweep (2/4/8/16 / 255 on 1/2/4/8/every frame),
# the adversarially trained detection network (vote-robust, paper-robust) on synthetic,
# for the synthetic set and UT-Interaction (packed clip sets under $PACKS, see README "Data").
# Resumable: rerun the same command to finish the cases that are missing.
#   PACKS=packs OUT=gpu-out bash scripts/security_gpu.sh
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
PACKS=${PACKS:-packs}
OUT=${OUT:-gpu-out}
PY=${PY:-python3}
DEV=${DEV:-cuda}
mkdir -p "$OUT" results
t0=$(date +%s)
$PY benchmarks/bench_security.py --mode full --device $DEV --threads 8 --robust-detector synthetic-lrcn-robust \
  --out results/security-synthetic.json \
  > $OUT/security-synthetic.log 2>&1; echo "synthetic rc=$? at $(( $(date +%s) - t0 ))s"
$PY benchmarks/bench_security.py --mode full --device $DEV --threads 8 --grid --only none,vote-robust,vote+squeeze \
  --threats sweep,eps32-all,eps64-all --attacks pgd,adaptive --robust-detector synthetic-lrcn-robust \
  --out results/security-synthetic-sweep.json > $OUT/security-sweep.log 2>&1
echo "sweep rc=$? at $(( $(date +%s) - t0 ))s"
$PY benchmarks/bench_security.py --mode full --device $DEV --threads 8 --dataset ut-interaction --model ut-lrcn \
  --root $PACKS/ut --out results/security-ut-interaction.json > $OUT/security-ut.log 2>&1
echo "ut rc=$? at $(( $(date +%s) - t0 ))s"
cp results/security-*.json results/security-*.png "$OUT"/ 2>/dev/null
echo "== all done at $(( $(date +%s) - t0 ))s"
