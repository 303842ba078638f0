#!/usr/bin/env bash
# System A (mhc_mlp/ic) index enhancement on ../shared/data/cn, monthly, 2017-2023:
# the three indices at the defaults, the same without outside candidates (--max-outside 0),
# and the turnover limit as a sensitivity (CSI 500). Then prints the README table.
# The README table predates the default risk scaling (b3de422): SCALING=--no-risk-scaling (the
# default here) reproduces it; SCALING=--risk-scaling runs the current default.
# Usage: bash docs/experiments/system_a_enhancement.sh RUN_DIR [DATA]
set -euo pipefail
scaling=${SCALING:---no-risk-scaling}
run=${1:-runs/barra_mhc_pit}
data=${2:-../shared/data/cn}
sig=$run/signals/mhc_mlp__ic.parquet
out=$run/portfolio_grid
bt() {
  deepalpha backtest "$sig" --data "$data" --freq monthly --start 2017-01-01 $scaling "$@" > /dev/null
}
for ix in csi300 csi500 csi1000; do
  bt --index $ix --out $out/${ix}__default
  bt --index $ix --max-outside 0 --out $out/${ix}__outside0
done
for to in 0.1 0.15 0.5; do
  bt --index csi500 --turnover $to --out $out/csi500__to$to
done
python docs/experiments/enhancement_table.py $out
