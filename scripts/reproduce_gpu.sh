#!/usr/bin/env bash
# Runs both reproductions (synthetic, UT-Interaction from packed clip sets) on the lent GPU machine
# and packs report.md, results.json, figures and the per-clip records into $OUT (the clip sets stay behind).
#   PACKS=.devcarry OUT=gpu-out bash scripts/reproduce_gpu.sh
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
PACKS=${PACKS:-.devcarry}
OUT=${OUT:-gpu-out}
PY=${PY:-python3}
DEV=${DEV:-cuda}
R=results
mkdir -p "$OUT" "$R"
t0=$(date +%s)
timeout 200 $PY -m vidshield reproduce --dataset synthetic --dense-steps 1500 --out $R/synthetic --device $DEV --json \
  > /tmp/synthetic.json 2> /tmp/synthetic.err; echo "synthetic rc=$? at $(( $(date +%s) - t0 ))s"; tail -5 /tmp/synthetic.err
timeout 130 $PY -m vidshield reproduce --dataset ut-interaction --root $PACKS/ut --dense-steps 1500 --out $R/ut-interaction \
  --device $DEV --json > /tmp/ut.json 2> /tmp/ut.err; echo "ut rc=$? at $(( $(date +%s) - t0 ))s"; tail -5 /tmp/ut.err
for d in synthetic ut-interaction; do
  (cd $R/$d && tar cf - report.md results.json config.json figures sets/*_reports.json detections.json predictions.json) > $OUT/$d.tar
done
echo "== all done at $(( $(date +%s) - t0 ))s"
