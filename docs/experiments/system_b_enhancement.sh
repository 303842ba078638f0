#!/usr/bin/env bash
# System B (DecompGRN) index enhancement on ../shared/data/cn, weekly, 2017-2023, with the run's
# daily risk model: each index without outside candidates (--max-outside 0), and the turnover
# limit as a sensitivity (CSI 1000; the run's own backtests use the defaults). Then prints the
# README table over the run's default backtests and these.
# The README table predates the default risk scaling (b3de422): SCALING=--no-risk-scaling (the
# default here) reproduces it; SCALING=--risk-scaling runs the current default.
# Usage: bash docs/experiments/system_b_enhancement.sh RUN_DIR [DATA]
set -euo pipefail
scaling=${SCALING:---no-risk-scaling}
run=${1:-runs/system_b_cpu}
data=${2:-../shared/data/cn}
sig=$run/signals/decompgrn.parquet
out=$run/portfolio_grid
bt() {
  deepalpha backtest "$sig" --data "$data" --freq weekly --start 2017-01-01 \
    --risk "$run/risk_daily" $scaling "$@" > /dev/null
}
mkdir -p "$out"
for ix in csi300 csi500 csi1000; do
  [ -d "$run/portfolio/decompgrn__$ix" ] && cp -r "$run/portfolio/decompgrn__$ix" "$out/${ix}__default"
  bt --index $ix --max-outside 0 --out $out/${ix}__outside0
done
for to in 0.15 0.5; do
  bt --index csi1000 --turnover $to --out $out/csi1000__to$to
done
python docs/experiments/enhancement_table.py $out
