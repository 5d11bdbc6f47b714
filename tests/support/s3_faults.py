#!/usr/bin/env python3
"""An HTTP proxy in front of an S3-compatible server that answers as S3 does when it is
busy, racing, encrypting with KMS or keeping another clock.

    s3_faults.py --target PORT [--port 0]

Prints "listening PORT" once it serves. Requests are forwarded unchanged (the Host
header too, so signatures still verify); faults are set and counted over HTTP:

    POST /__faults__  {"rules": [{"op": "CompleteMultipartUpload", "fault": "conflict",
                                  "count": 1, "key": "fact/"}],
                       "rates": {"slowdown": 0.05, "drop": 0.02},
                       "seed": 1, "skew_secs": 1800, "opaque_etags": true,
                       "no_checksums": false}
    GET  /__faults__  {"injected": {"slowdown": 3, ...}, "requests": {"PutObject": 40, ...}}

Faults:
  slowdown       503 SlowDown, not forwarded
  internal       500 InternalError, not forwarded
  conflict       409 ConditionalRequestConflict, not forwarded
  drop           forwarded, and when the server succeeded the connection is closed
                 without an answer: the client retries into its own write
  kms_denied     403 AccessDenied naming kms:GenerateDataKey, not forwarded
  late           forwarded, and the answer held back late_secs (default 1) before it
                 is sent: the server has done the work while the client still waits
Modes:
  opaque_etags   ETags of objects are not MD5s (as under SSE-KMS)
  no_checksums   no x-amz-checksum-* headers come back (a store that keeps none)
  skew_secs      the server's clock is this far ahead: answers carry its Date, and a
                 request signed more than 15 minutes off is refused with
                 403 RequestTimeTooSkewed, as S3 refuses it
"""

import argparse
import calendar
import email.utils
import hashlib
import http.client
import http.server
import json
import random
import socket
import sys
import threading
import time
import urllib.parse

MAX_SKEW_SECS = 15 * 60

ERRORS = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    "conflict": (
        409,
        "ConditionalRequestConflict",
        "A conflicting conditional operation is currently in progress against this resource. Please try again.",
    ),
    "kms_denied": (
        403,
        "AccessDenied",
        "User: arn:aws:iam::123456789012:user/svr-etl is not authorized to perform: "
        "kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:123456789012:key/"
        "1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows "
        "the kms:GenerateDataKey action",
    ),
}

# Which requests each random fault may hit: S3 throttles and errs on any request, but
# answers 409 only to conditional writes, and a lost answer matters on writes.
APPLIES = {
    "slowdown": None,
    "internal": None,
    "conflict": {"PutObject", "CompleteMultipartUpload"},
    "drop": {"PutObject", "CompleteMultipartUpload"},
    "kms_denied": {"PutObject", "CreateMultipartUpload"},
    "late": None,
}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.config = {}
        self.rng = random.Random(0)
        self.injected = {}
        self.requests = {}

    def set(self, config):
        with self.lock:
            self.config = config
            self.rng = random.Random(config.get("seed", 0))

    def count(self, table, name):
        table[name] = table.get(name, 0) + 1

    def choose(self, op, key):
        """The fault for this request, if any, counted as injected."""
        with self.lock:
            self.count(self.requests, op)
            for rule in self.config.get("rules", []):
                if rule.get("count", 1) <= 0 or rule["op"] != op:
                    continue
                if rule.get("key", "") not in key:
                    continue
                rule["count"] = rule.get("count", 1) - 1
                self.count(self.injected, rule["fault"])
                return rule["fault"]
            for fault, rate in self.config.get("rates", {}).items():
                ops = APPLIES[fault]
                if (ops is None or op in ops) and self.rng.random() < rate:
                    self.count(self.injected, fault)
                    return fault
            return None

    def count_skew(self):
        with self.lock:
            self.count(self.injected, "skewed")

    def mode(self, name, default=None):
        with self.lock:
            return self.config.get(name, default)

    def snapshot(self):
        with self.lock:
            return {"injected": dict(self.injected), "requests": dict(self.requests)}


def operation(method, path, query):
    """The S3 operation of a path-style request."""
    parts = path.lstrip("/").split("/", 1)
    has_key = len(parts) == 2 and parts[1] != ""
    q = urllib.parse.parse_qs(query, keep_blank_values=True)
    if method == "PUT":
        if "partNumber" in q:
            return "UploadPart"
        return "PutObject" if has_key else "CreateBucket"
    if method == "POST":
        if "uploads" in q:
            return "CreateMultipartUpload"
        if "uploadId" in q:
            return "CompleteMultipartUpload"
        return "DeleteObjects" if "delete" in q else "Post"
    if method == "GET":
        if "uploads" in q:
            return "ListMultipartUploads"
        return "GetObject" if has_key else "ListObjects"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "DELETE":
        if "uploadId" in q:
            return "AbortMultipartUpload"
        return "DeleteObject" if has_key else "DeleteBucket"
    return method


def server_time(skew):
    return time.time() + skew


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def amz_date_seconds(value):
    return calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None
    target = None

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status, headers, body, head=False):
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        if not head:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def error(self, status, code, message, skew, extra=""):
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
            "<RequestId>FAULTPROXY</RequestId></Error>"
        ).encode()
        self.answer(
            status,
            [("Content-Type", "application/xml"), ("Date", http_date(server_time(skew)))],
            body,
            head=self.command == "HEAD",
        )

    def control(self):
        if self.command == "POST":
            self.state.set(json.loads(self.body() or b"{}"))
            payload = b"{}"
        else:
            payload = json.dumps(self.state.snapshot()).encode()
        self.answer(200, [("Content-Type", "application/json")], payload)

    def handle_any(self):
        path, _, query = self.path.partition("?")
        if path == "/__faults__":
            return self.control()
        body = self.body()
        op = operation(self.command, path, query)
        skew = self.state.mode("skew_secs", 0)
        if skew:
            sent = self.headers.get("X-Amz-Date")
            now = server_time(skew)
            if sent and abs(amz_date_seconds(sent) - now) > MAX_SKEW_SECS:
                self.state.count_skew()
                return self.error(
                    403,
                    "RequestTimeTooSkewed",
                    "The difference between the request time and the current time is too large.",
                    skew,
                    f"<RequestTime>{sent}</RequestTime><ServerTime>{http_date(now)}</ServerTime>"
                    "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>",
                )
        fault = self.state.choose(op, path)
        if fault in ERRORS:
            status, code, message = ERRORS[fault]
            return self.error(status, code, message, skew)
        status, headers, answer = self.forward(body)
        if fault == "late":
            time.sleep(self.state.mode("late_secs", 1.0))
        if fault == "drop" and 200 <= status < 300:
            # The server did the work; the client never hears of it.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.answer(status, self.rewrite(op, headers, skew), answer, head=self.command == "HEAD")

    def forward(self, body):
        conn = http.client.HTTPConnection("127.0.0.1", self.target, timeout=120)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() in ("transfer-encoding", "connection"):
                continue
            if name.lower() == "content-length":
                continue
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        answer = response.read()
        headers = [
            (k, v)
            for k, v in response.getheaders()
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server")
        ]
        if self.command == "HEAD":
            length = response.getheader("Content-Length")
            if length is not None:
                headers.append(("Content-Length", length))
        conn.close()
        return response.status, headers, answer

    def rewrite(self, op, headers, skew):
        out = []
        for name, value in headers:
            lower = name.lower()
            if self.state.mode("no_checksums") and lower.startswith("x-amz-checksum-"):
                continue
            if (
                self.state.mode("opaque_etags")
                and lower == "etag"
                and op in ("HeadObject", "GetObject", "PutObject")
            ):
                value = '"' + hashlib.md5(("kms" + value).encode()).hexdigest()[:30] + 'ab"'
            out.append((name, value))
        out.append(("Date", http_date(server_time(skew))))
        return out

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    Handler.state = State()
    Handler.target = args.target
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
