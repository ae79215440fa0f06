"""Administers a moto S3 server for slabfront's tests (run with the interpreter that has moto).

  s3_admin.py setup ENDPOINT BIG_BYTES   users, keys, a private bucket, objects; then auth on.
                                         Prints {"a": [id, secret], "b": [id, secret]} as JSON.
  s3_admin.py revoke ENDPOINT ID SECRET  deletes access key ID (signed with that same key).
  s3_admin.py put ENDPOINT ID SECRET KEY BODY
"""
import json
import sys
import urllib.request

import boto3

BUCKET = "private"
REGION = "us-east-1"
POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}],
})


def client(kind, ep, key_id="any", secret="any"):
    return boto3.client(kind, endpoint_url=ep, region_name=REGION,
                        aws_access_key_id=key_id, aws_secret_access_key=secret)


def big_body(n):
    # Byte i is (i mod 1000003) mod 256: no period of a power of two, so a misplaced block
    # shows. The test computes the same.
    cycle = bytes(i % 256 for i in range(1000003))
    reps = n // len(cycle) + 1
    return (cycle * reps)[:n]


def setup(ep, big):
    iam = client("iam", ep)
    keys = {}
    for name in ("a", "b"):
        iam.create_user(UserName=f"edge-{name}")
        iam.put_user_policy(UserName=f"edge-{name}", PolicyName="all", PolicyDocument=POLICY)
        k = iam.create_access_key(UserName=f"edge-{name}")["AccessKey"]
        keys[name] = [k["AccessKeyId"], k["SecretAccessKey"]]
    s3 = client("s3", ep, *keys["a"])
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="hello.txt", Body=b"hello from a private bucket\n",
                  ContentType="text/plain")
    s3.put_object(Bucket=BUCKET, Key="dir/a file \u00fcn\u00efc\u00f8de + (1).txt",
                  Body=b"spaces and unicode\n")
    if big > 0:
        s3.put_object(Bucket=BUCKET, Key="big.bin", Body=big_body(big))
    req = urllib.request.Request(ep + "/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req).read()
    print(json.dumps(keys))


def main():
    cmd, ep = sys.argv[1], sys.argv[2]
    if cmd == "setup":
        setup(ep, int(sys.argv[3]))
    elif cmd == "revoke":
        key_id, secret = sys.argv[3], sys.argv[4]
        iam = client("iam", ep, key_id, secret)
        user = iam.get_access_key_last_used(AccessKeyId=key_id)["UserName"]
        iam.delete_access_key(UserName=user, AccessKeyId=key_id)
    elif cmd == "put":
        client("s3", ep, sys.argv[3], sys.argv[4]).put_object(
            Bucket=BUCKET, Key=sys.argv[5], Body=sys.argv[6].encode())
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
