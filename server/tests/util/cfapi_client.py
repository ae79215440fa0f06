"""Drives slabfront's CloudFront API with real clients: boto3 and the AWS CLI, unmodified,
pointed at slabfront with endpoint_url / --endpoint-url and the test's access key.

Usage: cfapi_client.py COMMAND [ARGS]; environment: CF_ENDPOINT (the admin listener),
CF_EDGE (the edge listener), CF_ORIGIN (the origin, http://127.0.0.1:PORT), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_CLI (the aws command). Prints one JSON object on success; any
failed expectation raises (non-zero exit, traceback on stderr).
"""

import concurrent.futures
import datetime
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import boto3
import botocore.auth
import botocore.exceptions

ENDPOINT = os.environ["CF_ENDPOINT"]
FAST = {"Delay": 1, "MaxAttempts": 60}


def client(key=None, secret=None):
    return boto3.client(
        "cloudfront",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=key or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["AWS_SECRET_ACCESS_KEY"],
    )


def origin_port():
    return urllib.parse.urlsplit(os.environ["CF_ORIGIN"]).port


def config(ref, aliases=(), enabled=True, comment="made by boto3"):
    return {
        "CallerReference": ref,
        "Aliases": {"Quantity": len(aliases), "Items": list(aliases)},
        "DefaultRootObject": "",
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "app",
                    "DomainName": "127.0.0.1",
                    "CustomOriginConfig": {
                        "HTTPPort": origin_port(),
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": "http-only",
                    },
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "app",
            "ViewerProtocolPolicy": "allow-all",
            # The managed CachingOptimized policy.
            "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
        },
        "Comment": comment,
        "Enabled": enabled,
        "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
    }


def code(e):
    return e.response["Error"]["Code"]


def expect_error(wanted, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        assert code(e) == wanted, f"expected {wanted}, got {code(e)}: {e}"
        return e
    raise AssertionError(f"expected {wanted}, the call succeeded")


def fetch(base, path, host=None):
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("GET", path, headers={"Host": host} if host else {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


def workflow():
    cf = client()
    paths = ["/a.bin", "/dir/b.txt"]
    created = cf.create_distribution(DistributionConfig=config("wf-1", ["shop.example"]))
    d = created["Distribution"]
    did, domain, etag = d["Id"], d["DomainName"], created["ETag"]
    assert did.startswith("E") and len(did) == 14, did
    assert d["Status"] in ("InProgress", "Deployed")
    # CallerReference idempotency: the same request gives the same distribution; the same
    # reference with other content is refused.
    again = cf.create_distribution(DistributionConfig=config("wf-1", ["shop.example"]))
    assert again["Distribution"]["Id"] == did
    expect_error("DistributionAlreadyExists", cf.create_distribution,
                 DistributionConfig=config("wf-1", ["other.example"]))
    expect_error("CNAMEAlreadyExists", cf.create_distribution,
                 DistributionConfig=config("wf-2", ["shop.example"]))
    cf.get_waiter("distribution_deployed").wait(Id=did, WaiterConfig=FAST)
    assert cf.get_distribution(Id=did)["Distribution"]["Status"] == "Deployed"
    # Through the edge, by its DomainName and by its alias: the origin's bytes.
    same = []
    for p in paths:
        _, _, want = fetch(os.environ["CF_ORIGIN"], p)
        for host in (domain, "shop.example"):
            status, _, got = fetch(os.environ["CF_EDGE"], p, host)
            assert status == 200, (p, host, status)
            assert got == want, f"{p} via {host}: {len(got)} bytes, origin {len(want)}"
            same.append(len(got))
    inv = cf.create_invalidation(
        DistributionId=did,
        InvalidationBatch={"Paths": {"Quantity": 2, "Items": paths}, "CallerReference": "inv-1"},
    )["Invalidation"]
    cf.get_waiter("invalidation_completed").wait(DistributionId=did, Id=inv["Id"], WaiterConfig=FAST)
    got = cf.get_invalidation(DistributionId=did, Id=inv["Id"])["Invalidation"]
    assert got["Status"] == "Completed" and got["InvalidationBatch"]["Paths"]["Items"] == paths
    again = cf.create_invalidation(
        DistributionId=did,
        InvalidationBatch={"Paths": {"Quantity": 2, "Items": paths}, "CallerReference": "inv-1"},
    )["Invalidation"]
    assert again["Id"] == inv["Id"]
    expect_error("InvalidationBatchAlreadySubmitted", cf.create_invalidation, DistributionId=did,
                 InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/x"]}, "CallerReference": "inv-1"})
    listed = cf.list_invalidations(DistributionId=did)["InvalidationList"]
    assert [i["Id"] for i in listed["Items"]] == [inv["Id"]]
    # Update: disable, with If-Match; a stale ETag and a missing one are refused.
    cur = cf.get_distribution_config(Id=did)
    assert cur["ETag"] == etag
    dc = cur["DistributionConfig"]
    assert dc["Aliases"]["Items"] == ["shop.example"] and dc["Enabled"] is True
    expect_error("DistributionNotDisabled", cf.delete_distribution, Id=did, IfMatch=etag)
    dc["Enabled"] = False
    updated = cf.update_distribution(Id=did, IfMatch=etag, DistributionConfig=dc)
    new_etag = updated["ETag"]
    assert new_etag != etag
    expect_error("PreconditionFailed", cf.update_distribution, Id=did, IfMatch=etag, DistributionConfig=dc)
    expect_error("InvalidIfMatchVersion", cf.update_distribution, Id=did, IfMatch="", DistributionConfig=dc)
    cf.get_waiter("distribution_deployed").wait(Id=did, WaiterConfig=FAST)
    status, _, _ = fetch(os.environ["CF_EDGE"], paths[0], domain)
    assert status != 200, f"a disabled distribution answered {status}"
    expect_error("PreconditionFailed", cf.delete_distribution, Id=did, IfMatch=etag)
    cf.delete_distribution(Id=did, IfMatch=new_etag)
    expect_error("NoSuchDistribution", cf.get_distribution, Id=did)
    # What cannot be served is refused naming the element.
    bad = config("wf-3")
    bad["DefaultCacheBehavior"]["TargetOriginId"] = "nowhere"
    e = expect_error("InvalidArgument", cf.create_distribution, DistributionConfig=bad)
    assert "target_origin" in str(e), str(e)
    return {"id": did, "domain": domain, "bytes": same}


def file_distribution():
    """The configuration file's distribution: listed and readable, not writable."""
    cf = client()
    items = cf.list_distributions()["DistributionList"].get("Items", [])
    mine = [i for i in items if i["DomainName"] == os.environ["CF_FILE_NAME"]]
    assert len(mine) == 1, items
    did = mine[0]["Id"]
    cur = cf.get_distribution_config(Id=did)
    expect_error("IllegalUpdate", cf.update_distribution, Id=did, IfMatch=cur["ETag"],
                 DistributionConfig=cur["DistributionConfig"])
    expect_error("IllegalDelete", cf.delete_distribution, Id=did, IfMatch=cur["ETag"])
    return {"id": did}


def concurrent_updates():
    cf = client()
    d = cf.create_distribution(DistributionConfig=config("cc-1"))
    did, etag = d["Distribution"]["Id"], d["ETag"]
    dc = cf.get_distribution_config(Id=did)["DistributionConfig"]
    rounds = []
    for r in range(5):
        def update(n):
            c = dict(dc, Comment=f"writer {n} round {r}")
            try:
                return client().update_distribution(Id=did, IfMatch=etag, DistributionConfig=c)["ETag"]
            except botocore.exceptions.ClientError as e:
                return code(e)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            out = sorted(pool.map(update, [1, 2]), key=lambda x: x == "PreconditionFailed")
        assert out[1] == "PreconditionFailed" and out[0].startswith("E"), out
        etag = out[0]
        rounds.append(out)
    return {"id": did, "rounds": rounds}


def count():
    return len(client().list_distributions()["DistributionList"].get("Items", []))


def auth():
    before = count()
    body = b"<DistributionConfig xmlns='http://cloudfront.amazonaws.com/doc/2020-05-31/'></DistributionConfig>"
    u = urllib.parse.urlsplit(ENDPOINT)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("POST", "/2020-05-31/distribution", body=body, headers={"Content-Type": "text/xml"})
    r = c.getresponse()
    unsigned = (r.status, r.read().decode())
    assert unsigned[0] == 403 and "AccessDenied" in unsigned[1], unsigned
    expect_error("SignatureDoesNotMatch", client(secret="wrong").create_distribution,
                 DistributionConfig=config("auth-1"))
    expect_error("InvalidClientTokenId", client(key="AKIDNOBODY").create_distribution,
                 DistributionConfig=config("auth-2"))
    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(minutes=20)
    try:
        expect_error("RequestTimeTooSkewed", client().create_distribution,
                     DistributionConfig=config("auth-3"))
    finally:
        botocore.auth.get_current_datetime = real
    after = count()
    assert before == after, (before, after)
    return {"unsigned": unsigned[0], "distributions": after}


def create_one(ref):
    cf = client()
    d = cf.create_distribution(DistributionConfig=config(ref))
    return {"id": d["Distribution"]["Id"], "etag": d["ETag"], "domain": d["Distribution"]["DomainName"]}


def show(did):
    cf = client()
    d = cf.get_distribution(Id=did)
    return {"id": did, "etag": d["ETag"], "status": d["Distribution"]["Status"],
            "domain": d["Distribution"]["DomainName"]}


def many(n, prefix="many"):
    n = int(n)
    cf = client()
    started = time.time()
    made = set()
    # One client for every thread (boto3 clients are thread-safe; making one costs more
    # than a call).
    def one(i):
        return cf.create_distribution(DistributionConfig=config(f"{prefix}-{i}", comment=f"#{i}"))["Distribution"]["Id"]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for did in pool.map(one, range(n)):
            made.add(did)
    created_s = time.time() - started
    seen, pages = [], 0
    for page in cf.get_paginator("list_distributions").paginate(PaginationConfig={"PageSize": 100}):
        pages += 1
        seen.extend(i["Id"] for i in page["DistributionList"].get("Items", []))
    assert len(seen) == len(set(seen)), "a distribution listed twice"
    assert made <= set(seen), f"{len(made - set(seen))} created distributions not listed"
    return {"created": len(made), "listed": len(seen), "pages": pages, "create_seconds": round(created_s, 1)}


def cli(*args):
    out = subprocess.run([os.environ.get("AWS_CLI", "aws"), "cloudfront", *args,
                          "--endpoint-url", ENDPOINT, "--region", "us-east-1", "--output", "json"],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise AssertionError(f"aws cloudfront {' '.join(args)}: {out.returncode}: {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else {}


def cli_workflow():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dc.json")
        with open(path, "w") as f:
            json.dump(config("cli-1", ["cli.example"], comment="made by the AWS CLI"), f)
        d = cli("create-distribution", "--distribution-config", f"file://{path}")
        did, domain = d["Distribution"]["Id"], d["Distribution"]["DomainName"]
        cli("wait", "distribution-deployed", "--id", did)
        _, _, want = fetch(os.environ["CF_ORIGIN"], "/a.bin")
        status, _, got = fetch(os.environ["CF_EDGE"], "/a.bin", "cli.example")
        assert status == 200 and got == want, (status, len(got), len(want))
        inv = cli("create-invalidation", "--distribution-id", did, "--paths", "/a.bin", "/dir/*")
        cli("wait", "invalidation-completed", "--distribution-id", did, "--id", inv["Invalidation"]["Id"])
        listed = cli("list-distributions")
        assert did in [i["Id"] for i in listed["DistributionList"]["Items"]]
        cur = cli("get-distribution-config", "--id", did)
        dc = cur["DistributionConfig"]
        dc["Enabled"] = False
        with open(path, "w") as f:
            json.dump(dc, f)
        up = cli("update-distribution", "--id", did, "--if-match", cur["ETag"],
                 "--distribution-config", f"file://{path}")
        cli("wait", "distribution-deployed", "--id", did)
        cli("delete-distribution", "--id", did, "--if-match", up["ETag"])
        gone = subprocess.run([os.environ.get("AWS_CLI", "aws"), "cloudfront", "get-distribution", "--id", did,
                               "--endpoint-url", ENDPOINT, "--region", "us-east-1"],
                              capture_output=True, text=True, timeout=120)
        assert gone.returncode != 0 and "NoSuchDistribution" in gone.stderr, gone.stderr
        return {"id": did, "domain": domain, "bytes": len(got)}


COMMANDS = {
    "workflow": workflow,
    "file-distribution": file_distribution,
    "concurrent": concurrent_updates,
    "auth": auth,
    "create": create_one,
    "show": show,
    "many": many,
    "cli-workflow": cli_workflow,
}

if __name__ == "__main__":
    print(json.dumps(COMMANDS[sys.argv[1]](*sys.argv[2:])))
