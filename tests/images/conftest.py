"""A real S3 server for the S3 image store: moto's server mode in its own process.

moto does not check request signatures by default. The fixture creates an IAM user with an
access key and an s3:* policy, and a bucket, and then switches moto's authentication on
(POST /moto-api/reset-auth with 0: "no request goes unauthenticated from now on"), so from
then on every request must carry a valid SigV4 signature of that key (or of temporary credentials
of the role it creates), or moto answers 403 SignatureDoesNotMatch / InvalidAccessKeyId.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import boto3
import httpx
import pytest

from tests.fixtures.processes import start_and_wait_for

START_TIMEOUT_S = 30.0
REGION = "us-east-1"
BUCKET = "mjgate-images"
ROLE = "mjgate-image-store"


@dataclass
class MotoS3:
    proc: subprocess.Popen
    endpoint: str
    access_key_id: str
    secret_access_key: str
    role_arn: str
    bucket: str = BUCKET
    region: str = REGION

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def boto3(self, service: str, **credentials):
        """A boto3 client of this server, with the IAM user's key unless other credentials are given."""
        credentials = credentials or {"aws_access_key_id": self.access_key_id,
                                      "aws_secret_access_key": self.secret_access_key}
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region, **credentials)


def _start(port: int = 0) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc, found = start_and_wait_for([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                     env, r"Running on (http://127\.0\.0\.1:\d+)", "moto server", START_TIMEOUT_S)
    return proc, found.group(1)


@pytest.fixture(scope="session")
def moto_s3():
    proc, endpoint = _start()
    try:
        # Before authentication is switched on any key will do.
        bootstrap = {"aws_access_key_id": "AKIDBOOTSTRAP", "aws_secret_access_key": "bootstrap"}
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, **bootstrap)
        iam.create_user(UserName="mjgate")
        created = iam.create_access_key(UserName="mjgate")["AccessKey"]
        allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole"],
                                                         "Resource": "*"}]}
        iam.put_user_policy(UserName="mjgate", PolicyName="images", PolicyDocument=json.dumps(allow))
        # A role for temporary (STS) credentials, as an instance profile or a pod would have.
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"AWS": "*"}}]}
        role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        iam.put_role_policy(RoleName=ROLE, PolicyName="images", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=created["AccessKeyId"],
                     aws_secret_access_key=created["SecretAccessKey"]).create_bucket(Bucket=BUCKET)
        resp = httpx.post(endpoint + "/moto-api/reset-auth", content=b"0")  # authentication on
        assert resp.status_code == 200, resp.text
        yield MotoS3(proc, endpoint, created["AccessKeyId"], created["SecretAccessKey"], role["Arn"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
