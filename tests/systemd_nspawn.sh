#!/usr/bin/env bash
# The unit under a real systemd: systemd boots as PID 1 in a systemd-nspawn container over
# a throw-away overlay of this machine's root, the built .deb is installed there with dpkg,
# and svr-etl is driven only through systemctl and journalctl, as an operator does:
# enable --now (active only after READY), the status line, the start and trial lines, a
# reload that changes a key and one that is refused, a frozen daemon restarted by the
# watchdog, stop within the grace period, TPE trials and a compaction on S3 (moto on the
# host's loopback) under the unit's hardening, and a purge that leaves nothing of ours.
#
#     tests/systemd_nspawn.sh target/debian/svr-etl_*.deb     # as root; run by .ci/run
set -euo pipefail
deb=$(realpath "$1")
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
root=$work/root
nspawn= moto=
fail() { echo "systemd: $*" >&2; exit 1; }
cleanup() {
    [ -n "$nspawn" ] && kill "$nspawn" 2>/dev/null && wait "$nspawn" 2>/dev/null
    [ -n "$moto" ] && kill "$moto" 2>/dev/null
    umount "$root" 2>/dev/null || true
    umount "$work/t" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Waits until "$@" succeeds, up to $1 seconds.
until_ok() {
    local secs=$1; shift
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

# moto on the host's loopback (the container shares the host's network), a bucket, and a
# day of trials seeded before the daemon starts, for its compaction to take.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto=$!
endpoint=http://127.0.0.1:$port
until_ok 60 python3 -c "import urllib.request as u; u.urlopen('$endpoint/moto-api/')" || fail "moto did not start"
python3 -c "import urllib.request as u; u.urlopen(u.Request('$endpoint/svr', method='PUT'))"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export SVR_ETL__S3__ENDPOINT_URL=$endpoint SVR_ETL__S3__FORCE_PATH_STYLE=true SVR_ETL__S3__REGION=us-east-1
seeded=$(date -u -d yesterday +%F)
(cd "$work" && faketime "$seeded 12:00:00" "$repo/target/release/svr-etl" once --trials 3 \
    --sink s3://svr/p >/dev/null 2>&1) || fail "seeding $seeded"

mkdir -p "$work/t"
mount -t tmpfs tmpfs "$work/t"
mkdir -p "$work/t/upper" "$work/t/work" "$root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/t/upper,workdir=$work/t/work" "$root"
# The container starts clean of what this machine has of ours.
rm -rf "$root/etc/svr-etl" "$root/usr/bin/svr-etl" "$root/var/lib/private/svr-etl" \
    "$root/etc/systemd/system/svr-etl.service.d"
cp "$deb" "$root/root/svr-etl.deb"
systemd-nspawn -D "$root" --register=no --keep-unit -b >"$work/boot.log" 2>&1 </dev/null &
nspawn=$!
pid1() { pgrep -P "$nspawn" -x systemd; }
until_ok 60 pid1 || fail "systemd did not boot: $(tail -3 "$work/boot.log")"
ct() { nsenter -t "$(pid1)" -a "$@"; }
booted() { case $(ct systemctl is-system-running) in running|degraded) ;; *) return 1;; esac; }
until_ok 60 booted || fail "systemd is $(ct systemctl is-system-running)"
journal() { ct journalctl -u svr-etl --no-pager "$@"; }
# grep reads the whole journal: with -q it would stop at the first match, journalctl
# would die of SIGPIPE, and pipefail would fail the check.
logged() { journal | grep -F -- "$1" >/dev/null; }
status() { ct systemctl show -p StatusText --value svr-etl; }
main_pid() { ct systemctl show -p MainPID --value svr-etl; }

ct dpkg -i /root/svr-etl.deb >/dev/null
config=$root/etc/svr-etl/svr-etl.toml
write_config() {
    printf '[schedule]\ncron = "*/2 * * * * *"\ntrials_per_run = %s\nshutdown_grace_secs = 5\n%s' \
        "$1" "${2:-}" >"$config"
}
write_config 1

# Active only once READY: `systemctl start` of a Type=notify unit returns after it.
ct systemctl enable --now svr-etl 2>/dev/null || fail "enable --now failed: $(journal | tail -4)"
[ "$(ct systemctl is-active svr-etl)" = active ] || fail "not active after enable --now"
journal | grep "started on file:///var/lib/.*svr-etl/svr-etl-output: schedule .* (UTC), 1 trials a run, sampler random, engine exact" >/dev/null ||
    fail "the start line: $(journal | grep started)"
until_ok 30 logged "trial ok" || fail "no trial: $(journal | tail -5)"
best_by_cv() { status | grep 'best .* cv_r2=' >/dev/null; }
until_ok 30 best_by_cv ||
    fail "the status line: $(status)"
[ -n "$(ct find /var/lib/private/svr-etl/svr-etl-output/hyper -name '*.json')" ] ||
    fail "no trial under /var/lib/private/svr-etl"
echo "systemctl status svr-etl:"
ct systemctl status svr-etl --no-pager -n 4 | cut -c1-160 || true

# A reload that changes a key, then one the file refuses: the journal says which and why.
write_config 2
ct systemctl reload svr-etl
until_ok 30 logged "config reloaded: schedule.trials_per_run 1 -> 2" || fail "reload: $(journal | tail -3)"
write_config true
ct systemctl reload svr-etl
until_ok 30 logged "config reload refused (config /etc/svr-etl/svr-etl.toml: key \`schedule.trials_per_run\`" ||
    fail "refused reload: $(journal | grep -i reload | tail -3)"
[ "$(ct systemctl is-active svr-etl)" = active ] || fail "a refused reload stopped the service"
journal -p warning | grep "config reload refused" >/dev/null || fail "the refusal is not a warning"
journal | grep -E "started on|config reload" | cut -c1-250
write_config 1

# The watchdog: a frozen daemon is killed and restarted.
mkdir -p "$root/etc/systemd/system/svr-etl.service.d"
printf '[Service]\nWatchdogSec=3\nTimeoutAbortSec=5\nRestartSec=1\n' >"$root/etc/systemd/system/svr-etl.service.d/watchdog.conf"
ct systemctl daemon-reload
ct systemctl restart svr-etl
frozen=$(main_pid)
ct kill -STOP "$frozen"
until_ok 30 logged "Watchdog timeout" ||
    fail "no watchdog timeout"
restarted() { [ "$(ct systemctl is-active svr-etl)" = active ] && [ "$(main_pid)" != "$frozen" ]; }
until_ok 30 restarted ||
    fail "not restarted after the watchdog"
rm "$root/etc/systemd/system/svr-etl.service.d/watchdog.conf"

# S3 under the unit's hardening: TPE trials, the compaction of the seeded day and the
# report published after it, and metrics served to the host.
metrics_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$root/etc/systemd/system/svr-etl.service.d/s3.conf" <<EOF
[Service]
Environment=AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
Environment=SVR_ETL__S3__ENDPOINT_URL=$endpoint SVR_ETL__S3__FORCE_PATH_STYLE=true SVR_ETL__S3__REGION=us-east-1
EOF
write_config 1 "[search]
sampler = \"tpe\"
[sink]
url = \"s3://svr/p\"
upload_timeout_secs = 5
[compaction]
cron = \"* * * * * *\"
settle_secs = 6
[metrics]
listen = \"127.0.0.1:$metrics_port\"
"
ct systemctl daemon-reload
since=$(ct date '+%F %T')
ct systemctl restart svr-etl
three_trials() { (($(journal --since "$since" | grep -c 'trial ok') >= 3)); }
until_ok 60 three_trials ||
    fail "fewer than 3 trials on S3: $(journal | tail -5)"
until_ok 60 logged "compaction: $seeded" || fail "no compaction of $seeded: $(journal | grep -i compact | tail -3)"
python3 - "$endpoint" "$seeded" <<'EOF' || fail "no Parquet part for $seeded in the bucket"
import sys, urllib.request
listing = urllib.request.urlopen(f"{sys.argv[1]}/svr?list-type=2&prefix=p/hyper_parquet/dt={sys.argv[2]}/").read()
sys.exit(0 if b"part-00000.parquet" in listing else 1)
EOF
journal | grep "sampler tpe" >/dev/null || fail "the daemon did not start with TPE"
until_ok 60 logged "report published to s3://svr/p/report/latest.html" ||
    fail "no report published: $(journal | grep -i report | tail -3)"
scraped() {
    curl -sf "http://127.0.0.1:$metrics_port/metrics" |
        awk '/^svr_etl_trials_total\{status="ok"\}/ { ok = $2 } END { exit !(ok >= 3) }'
}
until_ok 30 scraped || fail "metrics: $(curl -s "http://127.0.0.1:$metrics_port/metrics" | grep trials_total)"

# Stop: within the grace period, exit 0, and never a kill by the filter.
started=$SECONDS
ct systemctl stop svr-etl
stop_secs=$((SECONDS - started))
((stop_secs <= 7)) || fail "stop took $stop_secs s"
[ "$(ct systemctl show -p Result --value svr-etl)" = success ] || fail "stop: $(ct systemctl show -p Result svr-etl)"
! journal --since "$since" | grep -E "status=31/SYS|code=killed|core-dump|Operation not permitted|trial failed" >/dev/null ||
    fail "the hardening got in the way: $(journal --since "$since" | grep -E 'SYS|killed|not permitted|failed' | head -3)"
echo "journal excerpt:"
journal -n 6 -o short | cut -c1-200

# Purge: nothing of ours is left but the state directory.
rm -r "$root/etc/systemd/system/svr-etl.service.d"
ct systemctl disable svr-etl 2>/dev/null || true
ct dpkg --purge svr-etl >/dev/null
for p in /usr/bin/svr-etl /etc/svr-etl /usr/lib/systemd/system/svr-etl.service /usr/share/svr-etl \
         /usr/share/doc/svr-etl; do
    [ ! -e "$root$p" ] || fail "$p left after purge"
done
ct systemctl cat svr-etl >/dev/null 2>&1 && fail "systemd still has the unit"
echo "systemd: enable, status, journal, reload, watchdog, S3 with TPE and compaction, the published report, metrics, stop and purge all as expected"
