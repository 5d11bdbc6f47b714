#!/usr/bin/env bash
# `svr-etl run` for MINUTES minutes (default 15) against moto behind the fault proxy
# (tests/support/s3_faults.py), two trials a second, with about 5 % of requests
# faulted at random: 503 SlowDown, 500 InternalError, 409 on conditional writes, and the
# answer to a write that landed lost (the SDK retries into its own write). ETags are
# opaque throughout, as under SSE-KMS, and the server's clock is 30 minutes ahead.
#
# Afterwards it checks the bucket: every trial the daemon logged is there whole (an ok
# hyper record and 442 facts), none recorded failed, no upload left open. It reports
# trials run, faults injected by kind, trials lost, trials misreported and the daemon's
# peak resident memory; it fails if any trial is lost or misreported.
#
#     benches/faulty_s3.sh [MINUTES]   # SVR_ETL_BIN picks the binary (default release)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-15}
bin=${SVR_ETL_BIN:-target/release/svr-etl}
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
moto_port=$(free_port)
moto_server -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
pids+=($!)
python3 tests/support/s3_faults.py --target "$moto_port" >"$dir/proxy.out" &
pids+=($!)
for _ in $(seq 100); do
    grep -q listening "$dir/proxy.out" 2>/dev/null && python3 -c "import socket; socket.create_connection(('127.0.0.1', $moto_port))" 2>/dev/null && break
    sleep 0.2
done
proxy_port=$(awk '{print $2}' "$dir/proxy.out")
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_EC2_METADATA_DISABLED=true
python3 - "$moto_port" <<'EOF'
import sys, boto3
boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1").create_bucket(Bucket="faulty")
EOF
curl -s -X POST "http://127.0.0.1:$proxy_port/__faults__" -d '{
  "seed": 7, "opaque_etags": true, "skew_secs": 1800,
  "rates": {"slowdown": 0.02, "internal": 0.01, "conflict": 0.01, "drop": 0.01}}' >/dev/null

printf '[schedule]\ncron = "* * * * * *"\ntrials_per_run = 2\n[compaction]\nenabled = false\n[sink]\nurl = "s3://faulty/p"\n[s3]\nendpoint_url = "http://127.0.0.1:%s"\nforce_path_style = true\nregion = "us-east-1"\n' \
    "$proxy_port" >"$dir/svr-etl.toml"
"$bin" run --config "$dir/svr-etl.toml" 2>"$dir/log" &
daemon=$!
pids+=($daemon)
echo "faulty S3: $minutes min, 2 trials a second, ~5 % of requests faulted"
sleep $((minutes * 60))
kill -0 "$daemon" 2>/dev/null || { echo "faulty S3: the daemon died"; tail -5 "$dir/log"; exit 1; }
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$daemon/status")
kill -TERM "$daemon"
wait "$daemon" || { echo "faulty S3: the daemon exited with $?"; tail -5 "$dir/log"; exit 1; }
curl -s "http://127.0.0.1:$proxy_port/__faults__" >"$dir/faults.json"

python3 - "$moto_port" "$dir/log" "$dir/faults.json" "$peak" <<'EOF'
import json, re, sys
import boto3
port, log_path, faults_path, peak = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
log = open(log_path).read()
ran = {int(m) for m in re.findall(r"trial (?:ok|queued|failed) (\d+)", log)}
landed, misreported = set(), []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="faulty", Prefix="p/hyper/"):
    for obj in page.get("Contents", []):
        record = json.loads(s3.get_object(Bucket="faulty", Key=obj["Key"])["Body"].read())
        fact = s3.get_object(Bucket="faulty", Key=obj["Key"].replace("p/hyper/", "p/fact/", 1))
        rows = fact["Body"].read().decode().count("\n")
        if record["status"] != "ok" or rows != 442:
            misreported.append((record["hyper_id"], record.get("error"), rows))
        landed.add(record["hyper_id"])
open_uploads = len(s3.list_multipart_uploads(Bucket="faulty").get("Uploads", []))
faults = json.load(open(faults_path))
lost = sorted(ran - landed)
print(f"trials run {len(ran)}, landed {len(landed)}, lost {len(lost)}, misreported {len(misreported)}")
print(f"requests {sum(faults['requests'].values())}: {json.dumps(faults['requests'], sort_keys=True)}")
print(f"faults injected {sum(faults['injected'].values())}: {json.dumps(faults['injected'], sort_keys=True)}")
print(f"log lines: {log.count('the SDK retries it')} retried answers, "
      f"{log.count('already holds exactly what was sent')} writes found already there, "
      f"{log.count('a write raced this one')} restarts after 409, "
      f"{len(re.findall(r'trial queued', log))} trials queued for a later try")
print(f"open uploads left {open_uploads}; peak RSS {peak} KiB")
if lost or misreported or open_uploads or not ran:
    print(f"FAILED: lost {lost[:10]}, misreported {misreported[:10]}")
    sys.exit(1)
EOF
