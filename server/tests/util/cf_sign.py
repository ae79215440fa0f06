"""Signs CloudFront URLs and cookies with botocore's CloudFrontSigner (the signer CloudFront
users already have), for server/tests/signed.rs.

Reads a JSON list of jobs on stdin, writes a JSON list of results on stdout. A job:
  {"key": PEM path, "key_id": id, "url": url, "expires": epoch,
   "policy": null | {"resource": str, "ip": str|null, "start": epoch|null},
   "form": "url" | "cookies"}
A result: the signed URL (form "url") or the three cookies (form "cookies").
"""
import datetime
import json
import sys

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


def signer_for(path):
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA1())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return lambda message: key.sign(message, ec.ECDSA(hashes.SHA256()))
    raise SystemExit(f"{path}: neither RSA nor EC")


def when(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)


def sign(job):
    signer = CloudFrontSigner(job["key_id"], signer_for(job["key"]))
    p = job.get("policy")
    policy = None
    if p is not None:
        start = when(p["start"]) if p.get("start") else None
        policy = signer.build_policy(p["resource"], when(job["expires"]), start, p.get("ip"))
    if job["form"] == "url":
        if policy is None:
            return signer.generate_presigned_url(job["url"], date_less_than=when(job["expires"]))
        return signer.generate_presigned_url(job["url"], policy=policy)
    if policy is None:
        raise SystemExit("cookies need a custom policy here")
    raw = policy.encode("utf-8")
    return {
        "CloudFront-Policy": signer._url_b64encode(raw).decode("utf-8"),
        "CloudFront-Signature": signer._url_b64encode(signer.rsa_signer(raw)).decode("utf-8"),
        "CloudFront-Key-Pair-Id": job["key_id"],
    }


json.dump([sign(j) for j in json.load(sys.stdin)], sys.stdout)
