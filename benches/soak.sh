#!/usr/bin/env bash
# Soak: `svr-etl run` on a one-second schedule for MINUTES minutes (default 10), local
# sink, TRIALS_PER_RUN trials a tick (default 1; 20 compresses a long run). Samples
# resident memory, threads and open descriptors every 10 s, and reports after a warm-up
# of a fifth of the run (at least a minute): the memory slope in KiB per 1,000 trials,
# the largest step between two samples and whether a thread appeared with it, and what
# a year at one trial a minute would add at that slope.
#
# It fails only on what load cannot cause: the daemon died, a trial failed, a tick was
# skipped, fewer trials landed than ticks asked for (95 %), the floor of open descriptors
# grew (a sample may catch writes in flight, each with a file open; the floor is what
# stays open between them), or more threads than the daemon's budget (the "threads: at
# most N" line it logs at start).
# Resident memory is reported, not judged: a thread the runtime starts under load adds
# about 1.2-1.5 MB at once. Heap kept per trial is judged by the leak test, which counts
# bytes (tests/leak.rs).
#
#     benches/soak.sh [MINUTES [TRIALS_PER_RUN]]   # SVR_ETL_BIN picks the binary (default
#                                                  # release); SOAK_CSV=FILE keeps the samples
set -euo pipefail
minutes=${1:-10}
per_run=${2:-1}
bin=${SVR_ETL_BIN:-target/release/svr-etl}
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
printf '[schedule]\ncron = "* * * * * *"\ntrials_per_run = %d\n[compaction]\nenabled = false\n[sink]\nurl = "%s/out"\n' \
    "$per_run" "$dir" >"$dir/svr-etl.toml"
"$bin" run --config "$dir/svr-etl.toml" 2>"$dir/log" &
pid=$!

total=$((minutes * 60))
warmup=$((total / 5 < 60 ? 60 : total / 5))
samples=${SOAK_CSV:-$dir/samples.csv}
echo "t,rss_kib,threads,fds,trials" >"$samples"
echo "soak: $minutes min, $per_run trial(s) a second, samples every 10 s, warm-up ${warmup} s"
echo "  t(s)  rss(KiB)  threads  fds  trials"
count_trials() { find "$dir/out/hyper" -name '*.json' 2>/dev/null | wc -l; }
for ((t = 10; t <= total; t += 10)); do
    sleep 10
    kill -0 "$pid" 2>/dev/null || { echo "soak: the daemon died"; tail -5 "$dir/log"; exit 1; }
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    threads=$(awk '/^Threads/ {print $2}' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    trials=$(count_trials)
    printf '%6d %9d %8d %4d %7d\n' "$t" "$rss" "$threads" "$fds" "$trials"
    echo "$t,$rss,$threads,$fds,$trials" >>"$samples"
done
kill -TERM "$pid"
wait "$pid"
pid=
trials=$(count_trials)
skipped=$(grep -c "tick skipped" "$dir/log" || true)
failed=$(grep -c "trial failed" "$dir/log" || true)
budget=$(sed -n 's/.*threads: at most \([0-9]*\).*/\1/p' "$dir/log" | head -1)
[ -n "$budget" ] || { echo "soak: the daemon logged no thread budget"; exit 1; }

# After warm-up: least-squares slope of RSS against trials, the largest step between
# two samples (with the threads 30 s before it and at it), the extremes.
read -r slope step step_t threads_before threads_after rss_first rss_last max_threads \
    min_fd max_fd floor_first floor_last < <(awk -F, -v w="$warmup" -v mid="$(((warmup + total) / 2))" '
    NR == 1 { next }
    $3 > mt { mt = $3 }
    $1 < w { next }
    {
        n++; sx += $5; sy += $2; sxx += $5 * $5; sxy += $5 * $2
        thr[n] = $3
        if (n == 1) first = $2
        # A new thread fills its heap as it takes work, so its step in RSS can come a
        # sample or two after the thread: the step is set against the threads 30 s
        # before it.
        else if ($2 - prev > step) { step = $2 - prev; at = $1; tb = thr[n > 3 ? n - 3 : 1]; ta = $3 }
        prev = $2; last = $2
        if (minfd == "" || $4 < minfd) minfd = $4
        if ($4 > maxfd) maxfd = $4
        # The floor of each half: descriptors open when no write is in flight.
        if ($1 < mid) { if (f1 == "" || $4 < f1) f1 = $4 } else { if (f2 == "" || $4 < f2) f2 = $4 }
    }
    END {
        d = n * sxx - sx * sx
        slope = d > 0 ? (n * sxy - sx * sy) / d * 1000 : 0
        printf "%.1f %d %d %d %d %d %d %d %d %d %d %d\n", slope, step, at, tb, ta, first, last, mt, minfd, maxfd, f1, f2 == "" ? f1 : f2
    }' "$samples")
year_mib=$(awk -v s="$slope" 'BEGIN {printf "%.1f", s * 525.6 / 1024}')
echo "soak: $trials trials in $total s, $skipped ticks skipped, $failed failed"
echo "soak: after warm-up RSS $rss_first -> $rss_last KiB, slope $slope KiB per 1,000 trials" \
    "(a year at one trial a minute: $year_mib MiB)"
if ((step > 0)); then
    with=$([ "$threads_after" -gt "$threads_before" ] && echo "with a new thread in the 30 s before it ($threads_before -> $threads_after)" ||
        echo "with no new thread in the 30 s before it ($threads_after)")
    echo "soak: largest step +$step KiB at $step_t s, $with"
fi
echo "soak: threads at most $max_threads (budget $budget); descriptors $min_fd..$max_fd, their floor" \
    "$floor_first in the first half after warm-up and $floor_last in the second"
ok=1
((floor_last <= floor_first)) || { echo "soak: the descriptors' floor grew"; ok=0; }
((max_threads <= budget)) || { echo "soak: $max_threads threads, over the budget of $budget"; ok=0; }
((skipped == 0)) || { echo "soak: ticks skipped"; ok=0; }
((failed == 0)) || { echo "soak: trials failed"; ok=0; }
((trials >= total * per_run * 95 / 100)) || { echo "soak: fewer trials than ticks asked for"; ok=0; }
((ok)) && echo "soak: passed"
((ok))
