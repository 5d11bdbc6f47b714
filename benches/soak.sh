#!/usr/bin/env bash
# Soak: `svr-etl run` on a one-second schedule for MINUTES minutes (default 10), local
# sink. Samples resident memory and open file descriptors every 10 s and checks, after
# a warm-up of a fifth of the run (at least a minute): memory grows by less than 5 %,
# descriptors stay flat, no tick is skipped, and a trial lands each second.
#
#     benches/soak.sh [MINUTES]        # SVR_ETL_BIN picks the binary (default release)
set -euo pipefail
minutes=${1:-10}
bin=${SVR_ETL_BIN:-target/release/svr-etl}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
printf '[schedule]\ncron = "* * * * * *"\n[sink]\nurl = "%s/out"\n' "$dir" >"$dir/svr-etl.toml"
"$bin" run --config "$dir/svr-etl.toml" 2>"$dir/log" &
pid=$!

total=$((minutes * 60))
warmup=$((total / 5 < 60 ? 60 : total / 5))
echo "soak: $minutes min, samples every 10 s after a ${warmup} s warm-up"
echo "  t(s)  rss(KiB)  fds  trials"
base_rss=0 max_rss=0 min_fd=1000000 max_fd=0
for ((t = 10; t <= total; t += 10)); do
    sleep 10
    kill -0 "$pid" 2>/dev/null || { echo "soak: the daemon died"; tail -5 "$dir/log"; exit 1; }
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    trials=$(find "$dir/out/hyper" -name '*.json' 2>/dev/null | wc -l)
    printf '%6d %9d %4d %7d\n' "$t" "$rss" "$fds" "$trials"
    if ((t >= warmup && base_rss == 0)); then base_rss=$rss; fi
    if ((t >= warmup)); then
        ((rss > max_rss)) && max_rss=$rss
        ((fds < min_fd)) && min_fd=$fds
        ((fds > max_fd)) && max_fd=$fds
    fi
done
kill -TERM "$pid"
wait "$pid"
trials=$(find "$dir/out/hyper" -name '*.json' | wc -l)
skipped=$(grep -c "tick skipped" "$dir/log" || true)
failed=$(grep -c "trial failed" "$dir/log" || true)
growth=$(awk -v a="$base_rss" -v b="$max_rss" 'BEGIN {printf "%.2f", (b - a) * 100 / a}')
echo "soak: $trials trials in $total s, $skipped ticks skipped, $failed failed;" \
    "memory after warm-up $base_rss KiB, peak $max_rss KiB (+$growth %); fds $min_fd..$max_fd"
ok=1
awk -v g="$growth" 'BEGIN {exit !(g < 5)}' || { echo "soak: memory grew $growth %"; ok=0; }
((max_fd - min_fd <= 1)) || { echo "soak: descriptors not flat"; ok=0; }
((skipped == 0)) || { echo "soak: ticks skipped"; ok=0; }
((failed == 0)) || { echo "soak: trials failed"; ok=0; }
((trials >= total * 95 / 100)) || { echo "soak: fewer than one trial a second"; ok=0; }
((ok)) && echo "soak: passed"
((ok))
