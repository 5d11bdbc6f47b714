#!/usr/bin/env bash
# Parallel efficiency of `svr-etl run`: one run of TRIALS trials (default 1024) with
# the daemon pinned to 1, 2, 4, ... of the machine's cores (taskset), writing to a
# local sink on tmpfs so the disk does not decide. Reports the run's time, the
# efficiency T(1) / (k T(k)) and the daemon's peak resident memory.
#
#     benches/daemon_scaling.sh [TRIALS]      # SVR_ETL_BIN picks the binary
set -euo pipefail
bin=${SVR_ETL_BIN:-target/release/svr-etl}
trials=${1:-1024}
cores=$(nproc)
dir=$(mktemp -d -p /dev/shm)
trap 'rm -rf "$dir"' EXIT
printf '[schedule]\ncron = "* * * * * *"\ntrials_per_run = %d\nshutdown_grace_secs = 0\n[sink]\nurl = "%s/out"\n' \
    "$trials" "$dir" >"$dir/c.toml"
echo "svr-etl run: $trials trials in one run, $cores cores"
echo "cores  seconds  efficiency  peak MiB"
base=""
for ((k = 1; k <= cores; k *= 2)); do
    rm -rf "$dir/out"
    taskset -c "0-$((k - 1))" "$bin" run --config "$dir/c.toml" 2>"$dir/log" &
    pid=$!
    until grep -qs "run finished" "$dir/log"; do sleep 0.2; done
    peak=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" || true
    ms=$(grep -m1 "run finished" "$dir/log" | sed -n 's/.* in \([0-9.]*\) ms$/\1/p')
    [ -n "$ms" ] || { echo "daemon_scaling: no run time in: $(grep -m1 "run finished" "$dir/log")"; exit 1; }
    secs=$(awk -v m="$ms" 'BEGIN {printf "%.3f", m / 1000}')
    base=${base:-$secs}
    eff=$(awk -v b="$base" -v s="$secs" -v k="$k" 'BEGIN {printf "%.1f", 100 * b / (k * s)}')
    printf '%5d  %7s  %8s %%  %8s\n' "$k" "$secs" "$eff" "$peak"
done
