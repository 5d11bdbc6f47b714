#!/usr/bin/env python3
"""The three routes of EC2's instance metadata service (IMDSv2) that an instance role's
credentials come from, backed by STS AssumeRole on a moto server, and rotated as EC2
rotates them: each set expires ROTATE seconds after it was issued, and a fresh one is
handed out once the current one has less than half of that left.

    fake_imds.py --sts ENDPOINT --role-arn ARN [--rotate 30]

The administrator's keys that assume the role are in ADMIN_KEY and ADMIN_SECRET.
Prints "listening PORT". GET /__imds__ answers {"keys": [every AccessKeyId issued],
"fetches": N}.
"""

import argparse
import datetime
import http.server
import json
import os
import sys
import threading

import boto3

ROLE = "svr-etl-instance"
TOKEN = "fake-imds-token"


class Credentials:
    def __init__(self, sts, role_arn, rotate):
        self.sts = sts
        self.role_arn = role_arn
        self.rotate = rotate
        self.lock = threading.Lock()
        self.current = None
        self.keys = []
        self.fetches = 0

    def now(self):
        return datetime.datetime.now(datetime.timezone.utc)

    def get(self):
        with self.lock:
            self.fetches += 1
            left = None if self.current is None else (self.current["expires"] - self.now())
            if left is None or left.total_seconds() < self.rotate / 2:
                issued = self.sts.assume_role(
                    RoleArn=self.role_arn,
                    RoleSessionName=f"i-{len(self.keys):04d}",
                    DurationSeconds=900,
                )["Credentials"]
                self.current = {
                    "AccessKeyId": issued["AccessKeyId"],
                    "SecretAccessKey": issued["SecretAccessKey"],
                    "Token": issued["SessionToken"],
                    "expires": self.now() + datetime.timedelta(seconds=self.rotate),
                }
                self.keys.append(issued["AccessKeyId"])
            c = self.current
            return {
                "Code": "Success",
                "LastUpdated": self.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Type": "AWS-HMAC",
                "AccessKeyId": c["AccessKeyId"],
                "SecretAccessKey": c["SecretAccessKey"],
                "Token": c["Token"],
                "Expiration": c["expires"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            }

    def snapshot(self):
        with self.lock:
            return {"keys": list(self.keys), "fetches": self.fetches}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    credentials = None

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path == "/latest/api/token":
            ttl = self.headers.get("x-aws-ec2-metadata-token-ttl-seconds", "21600")
            return self.reply(200, TOKEN, [("x-aws-ec2-metadata-token-ttl-seconds", ttl)])
        self.reply(404, "not found")

    def do_GET(self):
        if self.path == "/__imds__":
            return self.reply(200, json.dumps(self.credentials.snapshot()))
        if self.headers.get("x-aws-ec2-metadata-token") != TOKEN:
            return self.reply(401, "")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            return self.reply(200, ROLE)
        if self.path == base + ROLE:
            return self.reply(200, json.dumps(self.credentials.get()))
        self.reply(404, "not found")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sts", required=True)
    parser.add_argument("--role-arn", required=True)
    parser.add_argument("--rotate", type=float, default=30)
    args = parser.parse_args()
    sts = boto3.client(
        "sts",
        endpoint_url=args.sts,
        region_name="us-east-1",
        aws_access_key_id=os.environ["ADMIN_KEY"],
        aws_secret_access_key=os.environ["ADMIN_SECRET"],
    )
    Handler.credentials = Credentials(sts, args.role_arn, args.rotate)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
