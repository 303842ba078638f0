#!/usr/bin/env bash
# System B, the multi-seed comparison of issue 16 on ../shared/data/cn, end to end: the budget
# study on the validation year, the three-seed run, and every table of the README's System B
# section (headline tables, seed ensembles vs single seeds, paired differences vs the GRU,
# ensemble and seed by seed) and the ablation table. About 2 h 20 min on a 2-core box for the
# comparison, 10-25 min per ablation.
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
# 4. ablations of DecompGRN seed 0, each one config of configs/system_b/, as one table against
#    the comparison's decompgrn/s0 (paired per-date RankIC difference, HAC t, bootstrap CI)
for a in groups1 groups10 groups40 t150 mse turnover; do
  deepalpha run "configs/system_b/ablation_$a.yaml" --out "$runs/system_b_ablation_$a" --quiet
done
python docs/experiments/ablation_table.py system_b_seeds:decompgrn/s0 "$runs/system_b_seeds" \
  "$runs"/system_b_ablation_{groups1,groups10,groups40,t150,mse,turnover}
# 5. does turnover lift the GRU as much? (GRU seed 0 with the turnover field vs gru/s0)
deepalpha run configs/system_b/ablation_gru_turnover.yaml --out "$runs/system_b_ablation_gru_turnover" --quiet
python docs/experiments/ablation_table.py system_b_seeds:gru/s0 "$runs/system_b_seeds" \
  "$runs/system_b_ablation_gru_turnover"
