#!/usr/bin/env bash
# Runs both reproductions (synthetic, UT-Interaction from packed clip sets) on the lent GPU machine
# and packs report.md, results.json, figures and the synthetic dense perturbation into $OUT.
#   PACKS=.devcarry OUT=gpu-out bash scripts/reproduce_gpu.sh
set -uo pipefail
export PYTHONPATH=src PYTHONUNBUFFERED=1
PACKS=${PACKS:-.devcarry}
OUT=${OUT:-gpu-out}
PY=${PY:-python3}
DEV=${DEV:-cuda}
R=/tmp/vidshield-repro
mkdir -p "$OUT" "$R"
t0=$(date +%s)
timeout 200 $PY -m vidshield reproduce --dataset synthetic --dense-steps 1500 --out $R/synthetic --device $DEV --json \
  > $R/synthetic.json 2> $R/synthetic.err; echo "synthetic rc=$? at $(( $(date +%s) - t0 ))s"; tail -5 $R/synthetic.err
timeout 130 $PY -m vidshield reproduce --dataset ut-interaction --root $PACKS/ut --dense-steps 1500 --out $R/ut-interaction \
  --device $DEV --json > $R/ut.json 2> $R/ut.err; echo "ut rc=$? at $(( $(date +%s) - t0 ))s"; tail -5 $R/ut.err
for d in synthetic ut-interaction; do
  (cd $R/$d && tar cf - report.md results.json config.json figures sets/dense_perturbation.safetensors sets/*_reports.json \
     detections.json predictions.json 2>/dev/null) > $OUT/$d.tar
done
timeout 40 $PY benchmarks/bench_models.py --device $DEV --amp --full --batch-size 64 --min-seconds 1 > $OUT/bench_models.json 2>&1
tail -c 1500 $OUT/bench_models.json
echo "== all done at $(( $(date +%s) - t0 ))s"
