#!/usr/bin/env bash
# Parallel efficiency of `svr-etl run`: one run of TRIALS trials (default 1024) with
# the daemon pinned to 1, 2, 4, ... of the machine's cores (taskset), writing to a
# local sink on tmpfs so the disk does not decide. Each core count runs ROUNDS times
# (default 9), the counts taking turns, so that a slow spell on a shared machine falls
# on all of them; with 5 rounds one binary's efficiency on 2 cores spread over 5 points
# from one invocation to the next. Reports every run's time, the median, the efficiency
# of the medians T(1) / (k T(k)), the daemon's CPU seconds and its largest peak resident
# memory.
#
# The peer, in the same rounds: k daemons at once, each pinned to a core of its own and
# running TRIALS / k trials, which share nothing but the machine. Their efficiency (the
# slowest one's time against T(1) / k) is what the cores give work that never waits on
# another core: where caches, memory or a host's other tenants slow the cores down when
# all of them run, no single daemon does better than it.
#
#     benches/daemon_scaling.sh [TRIALS] [ROUNDS]      # SVR_ETL_BIN picks the binary
set -euo pipefail
bin=${SVR_ETL_BIN:-target/release/svr-etl}
trials=${1:-1024}
rounds=${2:-9}
cores=$(nproc)
dir=$(mktemp -d -p /dev/shm)
trap 'rm -rf "$dir"' EXIT
counts=()
for ((k = 1; k <= cores; k *= 2)); do counts+=("$k"); done

# Starts a daemon in "$dir/$1" on cores $2 for $3 trials; its pid in "$dir/$1/pid".
start() {
    local d="$dir/$1"
    rm -rf "$d" && mkdir -p "$d"
    printf '[schedule]\ncron = "* * * * * *"\ntrials_per_run = %d\nshutdown_grace_secs = 0\n[sink]\nurl = "%s/out"\n' \
        "$3" "$d" >"$d/c.toml"
    taskset -c "$2" "$bin" run --config "$d/c.toml" 2>"$d/log" &
    echo $! >"$d/pid"
}

# Waits for the daemon in "$dir/$1" to finish its run, stops it, and prints
# "seconds cpu_seconds peak_mib".
finish() {
    local d="$dir/$1" pid ms peak cpu
    pid=$(cat "$d/pid")
    until grep -qs "run finished" "$d/log"; do sleep 0.2; done
    peak=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat")
    kill -TERM "$pid"
    wait "$pid" || true
    ms=$(grep -m1 "run finished" "$d/log" | sed -n 's/.* in \([0-9.]*\) ms$/\1/p')
    [ -n "$ms" ] || { echo "daemon_scaling: no run time in: $(grep -m1 "run finished" "$d/log")" >&2; exit 1; }
    awk -v m="$ms" -v c="$cpu" -v p="$peak" 'BEGIN {printf "%.3f %s %s\n", m / 1000, c, p}'
}

# One daemon on the first k cores: "seconds cpu_seconds peak_mib".
run_on() {
    start one "0-$(($1 - 1))" "$trials"
    finish one
}

# k daemons, one per core, TRIALS / k trials each: the slowest one's seconds, the CPU
# seconds of all, the largest peak.
run_apart() {
    local k=$1 i
    for ((i = 0; i < k; i++)); do start "apart$i" "$i" $((trials / k)); done
    # Not a pipe: the loop must run in the shell that started the daemons, to wait on them.
    for ((i = 0; i < k; i++)); do finish "apart$i"; done >"$dir/apart"
    awk '$1 > s {s = $1} {c += $2} $3 > p {p = $3} END {printf "%.3f %.2f %s\n", s, c, p}' "$dir/apart"
}

declare -A times cpus peaks
for ((r = 1; r <= rounds; r++)); do
    for k in "${counts[@]}"; do
        read -r secs cpu peak < <(run_on "$k")
        times[$k]+="$secs "
        cpus[$k]+="$cpu "
        peaks[$k]+="$peak "
        [ "$k" -gt 1 ] || continue
        read -r secs cpu peak < <(run_apart "$k")
        times[apart$k]+="$secs "
        cpus[apart$k]+="$cpu "
        peaks[apart$k]+="$peak "
    done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "svr-etl run: $trials trials in one run, $cores cores, $rounds rounds"
echo "(k apart: k daemons at once, one per core, $trials / k trials each; the slowest one's time)"
echo "cores     median s  efficiency  median CPU s  peak MiB  every run (s)"
base=""
row() {
    local key=$1 label=$2 k=$3 secs cpu peak
    secs=$(median <<<"${times[$key]}")
    cpu=$(median <<<"${cpus[$key]}")
    peak=$(tr ' ' '\n' <<<"${peaks[$key]}" | grep . | sort -g | tail -1)
    base=${base:-$secs}
    effs[$key]=$(awk -v b="$base" -v s="$secs" -v k="$k" 'BEGIN {printf "%.1f", 100 * b / (k * s)}')
    printf '%-8s  %8.3f  %8s %%  %12s  %8s  %s\n' "$label" "$secs" "${effs[$key]}" "$cpu" "$peak" "${times[$key]}"
}
declare -A effs
for k in "${counts[@]}"; do
    row "$k" "$k" "$k"
    [ "$k" -gt 1 ] || continue
    row "apart$k" "$k apart" "$k"
    awk -v d="${effs[$k]}" -v a="${effs[apart$k]}" -v k="$k" \
        'BEGIN {printf "          one daemon on %d cores: %.1f %% of what %d apart reach\n", k, 100 * d / a, k}'
done
