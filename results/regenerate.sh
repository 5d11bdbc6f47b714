#!/usr/bin/env bash
# Regenerates results/ from a real run: 200 trials drawn with master seed 2026 on the
# embedded data set, into a scratch local sink.
#   results/regenerate.sh
# hyper.json and fact.json are the best trial's objects as written; leaderboard.csv is
# `svr-etl leaderboard --format csv` over all 200. Trial ids and times differ per run;
# the parameters and scores do not.
set -euo pipefail
cd "$(dirname "$0")/.."
sink=$(mktemp -d)
trap 'rm -rf "$sink"' EXIT
export SVR_ETL__SEARCH__SEED=2026 RUST_LOG=warn
cargo run --quiet -- once --trials 200 --sink "file://$sink" >/dev/null
cargo run --quiet -- leaderboard --sink "file://$sink" --format csv >results/leaderboard.csv
best=$(sed -n 2p results/leaderboard.csv | cut -d, -f2)
cp "$sink"/hyper/dt=*/"$best".json results/hyper.json
cp "$sink"/fact/dt=*/"$best".json results/fact.json
echo "best trial $best; $(($(wc -l <results/leaderboard.csv) - 1)) trials ranked"
