"""A real S3 server for the S3 image store: moto's server mode in its own process.

moto does not check request signatures by default. The fixture creates an IAM user with an
access key and an s3:* policy, and a bucket, and then switches moto's authentication on
(POST /moto-api/reset-auth with 0: "no request goes unauthenticated from now on"), so from
then on every request must carry a valid SigV4 signature of that key, or moto answers
403 SignatureDoesNotMatch / InvalidAccessKeyId.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest

from tests.fixtures.processes import start_and_wait_for

from mjgate.images.sigv4 import EMPTY_SHA256, Credentials, sign_v4

START_TIMEOUT_S = 30.0
REGION = "us-east-1"
BUCKET = "mjgate-images"


@dataclass
class MotoS3:
    proc: subprocess.Popen
    endpoint: str
    access_key_id: str
    secret_access_key: str
    bucket: str = BUCKET
    region: str = REGION

    @property
    def host(self) -> str:
        return self.endpoint.split("//", 1)[1]


def _signed(method: str, url: str, host: str, payload: bytes, credentials: Credentials, service: str,
            extra: dict | None = None) -> dict:
    digest = hashlib.sha256(payload).hexdigest() if payload else EMPTY_SHA256
    headers = {"host": host, **(extra or {})}
    if service == "s3":
        headers["x-amz-content-sha256"] = digest
    return sign_v4(method, url, headers, digest, credentials, region=REGION, service=service)


def _iam(http: httpx.Client, endpoint: str, host: str, **params: str) -> str:
    body = urlencode({**params, "Version": "2010-05-08"}).encode()
    # Before authentication is switched on any key will do; the signature's scope routes the call to IAM.
    headers = _signed("POST", endpoint + "/", host, body, Credentials("AKIDBOOTSTRAP", "bootstrap"), "iam",
                      {"content-type": "application/x-www-form-urlencoded"})
    resp = http.post(endpoint + "/", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.text


def _start(port: int = 0) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc, found = start_and_wait_for([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                     env, r"Running on (http://127\.0\.0\.1:\d+)", "moto server", START_TIMEOUT_S)
    return proc, found.group(1)


@pytest.fixture(scope="session")
def moto_s3():
    proc, endpoint = _start()
    try:
        host = endpoint.split("//", 1)[1]
        with httpx.Client(timeout=10) as http:
            _iam(http, endpoint, host, Action="CreateUser", UserName="mjgate")
            created = _iam(http, endpoint, host, Action="CreateAccessKey", UserName="mjgate")
            key_id = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", created).group(1)
            secret = re.search(r"<SecretAccessKey>([^<]+)</SecretAccessKey>", created).group(1)
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            _iam(http, endpoint, host, Action="PutUserPolicy", UserName="mjgate", PolicyName="images",
                 PolicyDocument=json.dumps(policy))
            url = f"{endpoint}/{BUCKET}"
            resp = http.put(url, headers=_signed("PUT", url, host, b"", Credentials(key_id, secret), "s3"))
            assert resp.status_code == 200, resp.text
            resp = http.post(endpoint + "/moto-api/reset-auth", content=b"0")  # authentication on
            assert resp.status_code == 200, resp.text
        yield MotoS3(proc, endpoint, key_id, secret)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
