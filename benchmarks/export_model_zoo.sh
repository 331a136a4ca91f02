#!/bin/bash
# Pack the runs of benchmarks/build_model_zoo.sh (the first zoo, 2026-11-24) into molssl/models/ (weights + model
# cards). Today's models are exported by benchmarks/ship_zoo.py; see each card's commands.
# Usage: bash benchmarks/export_model_zoo.sh [WORK_DIR [NAME...]]   (run from the repository root; NAMEs: only those)
set -euo pipefail
WORK=${1:-/tmp/zoo}
ONLY="${*:2}"
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
SHARED=${SHARED:-../shared/data}
DATA=$SHARED/moleculenet
PRE="zcat moses_train.csv.gz | head -20001 > moses_first20k.csv; molssl pretrain --smiles moses_first20k.csv --out pretrain --epochs 1 --batch-size 128 --checkpoint-every 50 --precision fp32 --seed 0 --workers 1"
FT="molssl finetune --pretrained pretrain/encoder.pt --data-dir $DATA --split scaffold --threads 1"
SPLIT="MoleculeNet file (DeepChem copy, checksum in molssl.chem.data.datasets); DeepChem/MolCLR scaffold split 80/10/10 (no chirality)"
NOTE="CPU budget: fine-tuned for few epochs from a briefly pre-trained encoder (see budget); expect lower scores than MolCLR's published 100-epoch results."

export_property() {  # NAME "SEEDS" RUN_ARGS TITLE TRAINING_DATA [extra export options...]
  want "$1" || return 0
  local name=$1 seeds=$2 args=$3 title=$4 data=$5; shift 5
  local cmds=()
  for s in $seeds; do cmds+=(--command "$FT --dataset $name --out ft/$name/s$s $args --seeds $s"); done
  molssl models export "$WORK/ft/$name" --name "$name" --title "$title" --training-data "$data. $SPLIT" \
    --data-dir "$DATA" --notes "$NOTE (The runs of the seeds ran in parallel.)" --command "$PRE" "${cmds[@]}" \
    --command "molssl models export ft/$name --name $name ..." "$@"
}

want molclr-gin && molssl models export "$WORK/pretrain" --name molclr-gin --title "MolCLR GIN (5 x 300, h = 512), MOSES 20k, 148 steps" \
  --description "Contrastive (MolCLR: atom masking + bond deletion, NT-Xent t = 0.1) pre-trained GIN encoder; the source of learned fingerprints (512-d representation h) and the starting point of every shipped property model." \
  --training-data "First 20,000 SMILES of the MOSES training set (moses_train.csv.gz, ZINC clean leads), 19,000 for training, 1,000 for the validation loss" \
  --probe data/example_molecules.csv --command "$PRE" --command "molssl models export pretrain --name molclr-gin ..." \
  --notes "A short CPU budget (1 epoch over 19,000 molecules); MolCLR pre-trains for 50 epochs on 10 million PubChem molecules."
export_property esol "0 1 2" "--epochs 10" "Aqueous solubility (ESOL)" \
  "ESOL (Delaney 2004), 1,128 molecules" --units "log10(mol/L)" \
  --label "measured log solubility in mols per litre=logS" \
  --description "Predicts log10 of the aqueous solubility in mol/L. Ensemble of 3 fine-tuned models (seeds 0-2)."
export_property freesolv "0 1 2" "--epochs 15" "Hydration free energy (FreeSolv)" \
  "FreeSolv (Mobley & Guthrie 2014), 642 molecules, experimental values" --units "kcal/mol" --label "expt=dG_hyd" \
  --description "Predicts the experimental hydration free energy in kcal/mol. Ensemble of 3 fine-tuned models (seeds 0-2)."
export_property lipo "0 1" "--epochs 5" "Lipophilicity (logD at pH 7.4)" \
  "Lipophilicity (AstraZeneca, ChEMBL), 4,200 molecules" --label "exp=logD7.4" \
  --description "Predicts the octanol/water distribution coefficient logD at pH 7.4 (dimensionless log10 ratio). Ensemble of 2 fine-tuned models (seeds 0-1)."
export_property bbbp "0 1" "--epochs 4" "Blood-brain barrier penetration (BBBP)" \
  "BBBP (Martins et al. 2012), 2,050 rows, the 11 RDKit cannot parse left out" --label "p_np=P(penetrates BBB)" \
  --description "Probability that the molecule penetrates the blood-brain barrier. Ensemble of 2 fine-tuned models (seeds 0-1)."
export_property bace "0 1" "--epochs 8" "BACE-1 inhibition (BACE)" \
  "BACE (Subramanian et al. 2016), 1,513 molecules, binary label (IC50 threshold)" --label "Class=P(BACE-1 inhibitor)" \
  --description "Probability that the molecule inhibits human beta-secretase 1 (BACE-1). Ensemble of 2 fine-tuned models (seeds 0-1)."
export_property tox21 "0 1" "--protocol multitask --epochs 3" "Tox21: 12 toxicity endpoints" \
  "Tox21 (2014 challenge), 7,831 molecules, 12 assays with missing labels masked" \
  --description "Probability of activity in each of the 12 Tox21 nuclear-receptor (NR-*) and stress-response (SR-*) assays. Ensemble of 2 multitask models (seeds 0-1; 12 outputs, masked loss)."
molssl models --markdown
