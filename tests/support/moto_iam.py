#!/usr/bin/env python3
"""Users, roles and keys on a moto server that enforces IAM (started with
INITIAL_NO_AUTH_ACTION_COUNT=3), each holding the shipped policy with BUCKET and PREFIX
filled in. Prints JSON.

    moto_iam.py ENDPOINT bootstrap
        an administrator: its three requests are the server's free ones
    moto_iam.py ENDPOINT user NAME BUCKET PREFIX [--without ACTION]
        a user holding the shipped policy (less one action), and its keys
    moto_iam.py ENDPOINT role NAME BUCKET PREFIX
        a role holding the shipped policy that the administrator may assume

user and role act as the administrator, whose keys are in ADMIN_KEY and ADMIN_SECRET.
"""

import argparse
import json
import os
import pathlib

import boto3

POLICY = pathlib.Path(__file__).resolve().parents[2] / "config" / "iam-policy.json"
REGION = "us-east-1"


def client(endpoint, service, key="test", secret="test"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def admin(endpoint, service):
    return client(endpoint, service, os.environ["ADMIN_KEY"], os.environ["ADMIN_SECRET"])


def shipped_policy(bucket, prefix, without=None):
    text = POLICY.read_text().replace("BUCKET", bucket).replace("PREFIX", prefix)
    policy = json.loads(text)
    statements = []
    for statement in policy["Statement"]:
        actions = [a for a in statement["Action"] if a != without]
        if actions:
            statements.append(dict(statement, Action=actions))
    policy["Statement"] = statements
    return json.dumps(policy)


def bootstrap(endpoint):
    iam = client(endpoint, "iam")
    iam.create_user(UserName="admin")
    iam.put_user_policy(
        UserName="admin",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def user(endpoint, name, bucket, prefix, without):
    iam = admin(endpoint, "iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="svr-etl",
        PolicyDocument=shipped_policy(bucket, prefix, without),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def role(endpoint, name, bucket, prefix):
    iam = admin(endpoint, "iam")
    admin_arn = iam.get_user(UserName="admin")["User"]["Arn"]
    # An AWS principal: moto's AssumeRole fails on a Service one (ec2.amazonaws.com).
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": admin_arn}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name, PolicyName="svr-etl", PolicyDocument=shipped_policy(bucket, prefix)
    )
    return {"arn": arn}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("what", choices=["bootstrap", "user", "role"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--without")
    args = parser.parse_args()
    if args.what == "bootstrap":
        out = bootstrap(args.endpoint)
    elif args.what == "user":
        out = user(args.endpoint, *args.args, args.without)
    else:
        out = role(args.endpoint, *args.args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
