#!/usr/bin/env bash
# Parallel efficiency of `svr-etl run`: one run of TRIALS trials (default 1024) with
# the daemon pinned to 1, 2, 4, ... of the machine's cores (taskset), writing to a
# local sink on tmpfs so the disk does not decide. Each core count runs ROUNDS times
# (default 5), the counts taking turns, so that a slow spell on a shared machine falls
# on all of them. Reports every run's time, the median, the efficiency of the medians
# T(1) / (k T(k)), the daemon's CPU seconds and its largest peak resident memory.
#
#     benches/daemon_scaling.sh [TRIALS] [ROUNDS]      # SVR_ETL_BIN picks the binary
set -euo pipefail
bin=${SVR_ETL_BIN:-target/release/svr-etl}
trials=${1:-1024}
rounds=${2:-5}
cores=$(nproc)
dir=$(mktemp -d -p /dev/shm)
trap 'rm -rf "$dir"' EXIT
printf '[schedule]\ncron = "* * * * * *"\ntrials_per_run = %d\nshutdown_grace_secs = 0\n[sink]\nurl = "%s/out"\n' \
    "$trials" "$dir" >"$dir/c.toml"
counts=()
for ((k = 1; k <= cores; k *= 2)); do counts+=("$k"); done

# One run on the first k cores: "seconds cpu_seconds peak_mib".
run_on() {
    local k=$1 pid ms peak cpu
    rm -rf "$dir/out"
    taskset -c "0-$((k - 1))" "$bin" run --config "$dir/c.toml" 2>"$dir/log" &
    pid=$!
    until grep -qs "run finished" "$dir/log"; do sleep 0.2; done
    peak=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat")
    kill -TERM "$pid"
    wait "$pid" || true
    ms=$(grep -m1 "run finished" "$dir/log" | sed -n 's/.* in \([0-9.]*\) ms$/\1/p')
    [ -n "$ms" ] || { echo "daemon_scaling: no run time in: $(grep -m1 "run finished" "$dir/log")" >&2; exit 1; }
    awk -v m="$ms" -v c="$cpu" -v p="$peak" 'BEGIN {printf "%.3f %s %s\n", m / 1000, c, p}'
}

declare -A times cpus peaks
for ((r = 1; r <= rounds; r++)); do
    for k in "${counts[@]}"; do
        read -r secs cpu peak < <(run_on "$k")
        times[$k]+="$secs "
        cpus[$k]+="$cpu "
        peaks[$k]+="$peak "
    done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "svr-etl run: $trials trials in one run, $cores cores, $rounds rounds"
echo "cores  median s  efficiency  median CPU s  peak MiB  every run (s)"
base=""
for k in "${counts[@]}"; do
    secs=$(median <<<"${times[$k]}")
    cpu=$(median <<<"${cpus[$k]}")
    peak=$(tr ' ' '\n' <<<"${peaks[$k]}" | grep . | sort -g | tail -1)
    base=${base:-$secs}
    eff=$(awk -v b="$base" -v s="$secs" -v k="$k" 'BEGIN {printf "%.1f", 100 * b / (k * s)}')
    printf '%5d  %8.3f  %8s %%  %12s  %8s  %s\n' "$k" "$secs" "$eff" "$cpu" "$peak" "${times[$k]}"
done
