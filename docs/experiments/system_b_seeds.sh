#!/usr/bin/env bash
# System B, the multi-seed comparison of issue 16 on ../shared/data/cn, end to end: the budget
# study on the validation year, the three-seed run, and every table of the README's System B
# section (headline tables, seed ensembles vs single seeds, paired differences vs the GRU,
# ensemble and seed by seed). About 2 h 20 min on a 2-core box.
# Usage: bash docs/experiments/system_b_seeds.sh [RUNS_DIR]
set -euo pipefail
runs=${1:-runs}
# 1. the training budget, chosen on 2016 (the first retrain's validation year) only
deepalpha run configs/system_b/budget_s10.yaml --out "$runs/system_b_budget" --quiet
deepalpha run configs/system_b/budget_s5.yaml --out "$runs/system_b_budget_s5" --quiet
python docs/experiments/validation_curves.py "$runs/system_b_budget" "$runs/system_b_budget_s5"
# 2. the comparison: GRU and DecompGRN x 3 seeds, RNN-LIN and RNN-LIN-GLU x 1
deepalpha run configs/system_b_seeds.yaml --out "$runs/system_b_seeds" --quiet
python docs/experiments/validation_curves.py "$runs/system_b_seeds"
deepalpha compare "$runs/system_b_seeds" --markdown
# 3. paired per-date differences: ensembles vs the GRU ensemble, then seed s vs GRU seed s
deepalpha compare --paired gru "$runs/system_b_seeds" --markdown
for s in 0 1 2; do
  deepalpha compare --paired "gru/s$s" "$runs/system_b_seeds" --universe all --markdown \
    | awk -v s="$s" '/ vs / { keep = ($1 == "decompgrn/s" s) } keep'
done
