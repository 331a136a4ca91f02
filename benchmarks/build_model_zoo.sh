#!/bin/bash
# Rebuild the FIRST model zoo (2026-11-24: molclr-gin and few-epoch property models; benchmarks/results/model_zoo.md,
# its last section), kept as the record of how it was made. Today's shipped models were made otherwise: each card
# lists its own commands (`molssl models show NAME`), and benchmarks/ship_zoo.py chose and exported them. Running
# this overwrites molssl/models/ with the November models. CPU only; about 1 h on a 2-core machine.
# Usage: bash benchmarks/build_model_zoo.sh [WORK_DIR]   (run from the repository root)
set -euo pipefail
WORK=${1:-/tmp/zoo}
SHARED=${SHARED:-../shared/data}
DATA=$SHARED/moleculenet
mkdir -p "$WORK/ft"
export OMP_NUM_THREADS=1

# 1. Pre-training: MolCLR GIN on the first 20,000 MOSES training SMILES, 1 epoch of batch 128 (148 steps), fp32.
zcat "$SHARED/pretrain/moses_train.csv.gz" | head -20001 > "$WORK/moses_first20k.csv"
molssl pretrain --smiles "$WORK/moses_first20k.csv" --out "$WORK/pretrain" \
  --epochs 1 --batch-size 128 --checkpoint-every 50 --precision fp32 --seed 0 --workers 1
ENC=$WORK/pretrain/encoder.pt

# 2. Fine-tuning (scaffold split, MolCLR hyper-parameters, few epochs): one run per (data set, seed), all in
#    parallel, each on one thread; the runs of a data set share its scaffold split and form its ensemble.
FT="molssl finetune --pretrained $ENC --data-dir $DATA --split scaffold --threads 1 --cache-dir $WORK/cache"
for s in 0 1 2; do $FT --dataset esol --out "$WORK/ft/esol/s$s" --epochs 10 --seeds $s & done
for s in 0 1 2; do $FT --dataset freesolv --out "$WORK/ft/freesolv/s$s" --epochs 15 --seeds $s & done
for s in 0 1; do $FT --dataset bbbp --out "$WORK/ft/bbbp/s$s" --epochs 4 --seeds $s & done
for s in 0 1; do $FT --dataset bace --out "$WORK/ft/bace/s$s" --epochs 8 --seeds $s & done
for s in 0 1; do $FT --dataset lipo --out "$WORK/ft/lipo/s$s" --epochs 5 --seeds $s & done
for s in 0 1; do $FT --dataset tox21 --out "$WORK/ft/tox21/s$s" --protocol multitask --epochs 3 --seeds $s & done
wait

# 3. Packing into molssl/models (int8 weights + model cards with the test-split scores).
bash benchmarks/export_model_zoo.sh "$WORK"
