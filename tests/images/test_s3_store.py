"""The S3-compatible image store (SPEC §3.4) against a real S3 server (moto, signatures enforced),
and the SigV4 signer against AWS's published examples."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import aiohttp
import pytest
from sqlalchemy import select

from mjgate.app import create_app
from mjgate.config import Settings
from mjgate.images import sigv4
from mjgate.images.s3 import S3Client, S3Error, S3ImageStore
from mjgate.images.store import build_image_store
from mjgate.models import Task
from tests.fixtures.app import gateway_settings
from tests.fixtures.relay import add_simulator_channel, make_relay

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


# ----------------------------------------------------------------------------- the signer

def test_sigv4_get_vanilla():
    """"get-vanilla" of the AWS Signature Version 4 test suite (aws-sig-v4-test-suite): credentials
    AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service",
    2015-08-30T12:36:00Z, GET / on example.amazonaws.com."""
    url = "https://example.amazonaws.com/"
    at = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)
    headers = {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"}
    canonical = sigv4.canonical_request("GET", url, headers, sigv4.EMPTY_SHA256)
    assert canonical == ("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert sigv4.string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", canonical) == (
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63")
    signed = sigv4.sign_v4("GET", url, {"Host": "example.amazonaws.com"}, sigv4.EMPTY_SHA256,
                           sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                           region="us-east-1", service="service", now=at)
    assert signed["x-amz-date"] == "20150830T123600Z"
    assert signed["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")


def test_sigv4_s3_get_object_example():
    """The S3 API reference's header-auth "Example: GET Object" (first 10 bytes of test.txt in
    examplebucket): AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 2013-05-24."""
    signed = sigv4.sign_v4(
        "GET", "https://examplebucket.s3.amazonaws.com/test.txt",
        {"Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9", "x-amz-content-sha256": sigv4.EMPTY_SHA256},
        sigv4.EMPTY_SHA256, sigv4.Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region="us-east-1", service="s3", now=datetime(2013, 5, 24, tzinfo=UTC),
    )
    assert signed["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_object_urls_are_path_style_and_encoded_once():
    client = S3Client(None, bucket="b", region="auto", access_key_id="k", secret_access_key="s",
                      endpoint_url="http://minio.local:9000/")
    assert client.object_url("images/12/a b+c.png") == "http://minio.local:9000/b/images/12/a%20b%2Bc.png"
    assert client.host == "minio.local:9000"
    assert S3Client(None, bucket="b", region="eu-west-1", access_key_id="k", secret_access_key="s").host == \
        "s3.eu-west-1.amazonaws.com"


# ----------------------------------------------------------------------------- moto checks signatures

@pytest.fixture
async def bucket(moto_s3):
    """Our own client on the test bucket, with the right credentials."""
    async with aiohttp.ClientSession() as http:
        yield S3Client(http, bucket=moto_s3.bucket, region=moto_s3.region, access_key_id=moto_s3.access_key_id,
                       secret_access_key=moto_s3.secret_access_key, endpoint_url=moto_s3.endpoint)


async def test_moto_enforces_signatures(moto_s3, bucket, tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"payload")
    digest = hashlib.sha256(b"payload").hexdigest()
    await bucket.put_file("auth-check/x.bin", path, 7, digest, "application/octet-stream")
    assert await bucket.get_bytes("auth-check/x.bin") == b"payload"

    wrong = S3Client(bucket.http, bucket=moto_s3.bucket, region=moto_s3.region,
                     access_key_id=moto_s3.access_key_id, secret_access_key="not-the-secret",
                     endpoint_url=moto_s3.endpoint)
    with pytest.raises(S3Error, match="403 SignatureDoesNotMatch"):
        await wrong.get_bytes("auth-check/x.bin")
    with pytest.raises(S3Error, match="403 SignatureDoesNotMatch"):
        await wrong.put_file("auth-check/y.bin", path, 7, digest, "application/octet-stream")
    unknown = S3Client(bucket.http, bucket=moto_s3.bucket, region=moto_s3.region, access_key_id="AKIANOSUCHKEY0000000",
                       secret_access_key=moto_s3.secret_access_key, endpoint_url=moto_s3.endpoint)
    with pytest.raises(S3Error, match="403 InvalidAccessKeyId"):
        await unknown.get_bytes("auth-check/x.bin")
    async with bucket.http.get(f"{moto_s3.endpoint}/{moto_s3.bucket}/auth-check/x.bin") as unsigned:
        assert unsigned.status == 403
    assert await bucket.get_bytes("auth-check/y.bin") is None


# ----------------------------------------------------------------------------- the gateway on S3

@pytest.fixture
def s3_secret(moto_s3) -> str:
    return moto_s3.secret_access_key


@pytest.fixture
def s3_prefix() -> str:
    return f"run-{uuid.uuid4().hex[:8]}/images/"


@pytest.fixture
async def app(db, db_url, tmp_path, moto_s3, s3_secret, s3_prefix):
    """The gateway app of tests/fixtures/app.py, storing images in the moto bucket."""
    application = create_app(gateway_settings(
        db_url, tmp_path, image_store="s3", s3_endpoint_url=moto_s3.endpoint, s3_bucket=moto_s3.bucket,
        s3_region=moto_s3.region, s3_access_key_id=moto_s3.access_key_id, s3_secret_access_key=s3_secret,
        s3_prefix=s3_prefix,
    ))
    async with application.router.lifespan_context(application):
        yield application


async def _stored_key(db, mj_id: str) -> str:
    async with db.read() as session:
        return (await session.scalars(select(Task.stored_image).where(Task.mj_id == mj_id))).one()


@sqlite_only
async def test_final_image_is_copied_to_s3_and_served_from_there(client, db, app, simulator_session, bucket,
                                                                  s3_prefix):
    assert isinstance(app.state.image_copier.store, S3ImageStore)
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    task = await relay.wait((await relay.post("/mj/submit/imagine", {"prompt": "keep me in s3"}))["result"])
    await app.state.image_copier.drain()
    key = await _stored_key(db, task["id"])
    assert key == f"{s3_prefix}{task['id'][-2:]}/{task['id']}.png"
    in_bucket = await bucket.get_bytes(key)
    assert in_bucket is not None and in_bucket.startswith(b"\x89PNG\r\n\x1a\n")

    simulator_session.restart()  # the upstream forgets the task and its image: only the bucket has it
    served = await client.get(task["imageUrl"])
    assert served.status_code == 200, served.text
    assert served.content == in_bucket
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-length"] == str(len(in_bucket))
    assert served.headers["cache-control"] == "private, max-age=86400"
    etag = served.headers["etag"]
    async with await bucket.get(key) as direct:
        assert direct.headers["ETag"] == etag

    not_modified = await client.get(task["imageUrl"], headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    changed = await client.get(task["imageUrl"], headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == in_bucket

    part = await client.get(task["imageUrl"], headers={"Range": "bytes=0-7"})
    assert part.status_code == 206
    assert part.content == in_bucket[:8] == b"\x89PNG\r\n\x1a\n"
    assert part.headers["content-range"] == f"bytes 0-7/{len(in_bucket)}"
    assert part.headers["content-length"] == "8"
    tail = await client.get(task["imageUrl"], headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == in_bucket[-4:]


@sqlite_only
@pytest.mark.parametrize("s3_secret", ["wrong-secret-key"])
async def test_wrong_secret_copy_fails_and_upstream_stays_the_source(client, db, app, simulator_session, bucket,
                                                                      s3_prefix):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    task = await relay.wait((await relay.post("/mj/submit/imagine", {"prompt": "not stored"}))["result"])
    await app.state.image_copier.drain()
    assert await _stored_key(db, task["id"]) == ""  # the PUT was refused (moto: SignatureDoesNotMatch)
    assert await bucket.get_bytes(f"{s3_prefix}{task['id'][-2:]}/{task['id']}.png") is None
    served = await client.get(task["imageUrl"])
    assert served.status_code == 200 and served.content.startswith(b"\x89PNG")  # from the upstream
    simulator_session.restart()
    assert (await client.get(task["imageUrl"])).status_code == 404  # no copy anywhere else


@sqlite_only
async def test_object_gone_from_the_bucket_is_served_from_the_upstream(client, db, app, simulator_session, bucket):
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    task = await relay.wait((await relay.post("/mj/submit/imagine", {"prompt": "deleted later"}))["result"])
    await app.state.image_copier.drain()
    key = await _stored_key(db, task["id"])
    original = await bucket.get_bytes(key)
    url = bucket.object_url(key)
    async with bucket.http.delete(url, headers=bucket.signed_headers("DELETE", url, sigv4.EMPTY_SHA256)) as resp:
        assert resp.status == 204
    served = await client.get(task["imageUrl"])
    assert served.status_code == 200 and served.content == original


# ----------------------------------------------------------------------------- the store on its own

async def test_put_spools_to_a_temporary_file_and_enforces_the_size_limit(bucket, simulator_session, tmp_path):
    spool = tmp_path / "spool"
    store = S3ImageStore(bucket, "direct/", max_bytes=2 << 20, spool_dir=spool)
    size = 1536 * 1024  # big-image serves exactly int(mb * 1 MiB) bytes
    async with bucket.http.get(simulator_session.base_url + "/__sim/big-image?mb=1.5") as resp:
        key = await store.put("1234567890123456", resp)
    assert key == "direct/56/1234567890123456.png"
    stored = await bucket.get_bytes(key)
    assert len(stored) == size
    assert list(spool.iterdir()) == []  # the temporary file is gone

    small = S3ImageStore(bucket, "direct/", max_bytes=1 << 20, spool_dir=spool)
    async with bucket.http.get(simulator_session.base_url + "/__sim/big-image?mb=1.5") as resp:
        with pytest.raises(ValueError, match="larger than"):
            await small.put("6543210987654321", resp)
    assert await bucket.get_bytes("direct/21/6543210987654321.png") is None
    assert list(spool.iterdir()) == []


def test_s3_store_needs_bucket_and_credentials(tmp_path):
    settings = Settings(data_dir=tmp_path, image_store="s3", s3_bucket="b")
    with pytest.raises(ValueError, match="MJGATE_S3_ACCESS_KEY_ID, MJGATE_S3_SECRET_ACCESS_KEY"):
        build_image_store(settings, None)
    assert build_image_store(Settings(data_dir=tmp_path, image_store="none"), None) is None
    store = build_image_store(Settings(data_dir=tmp_path, image_store="s3", s3_bucket="b", s3_access_key_id="k",
                                       s3_secret_access_key="s", s3_endpoint_url="http://127.0.0.1:9000"), None)
    assert isinstance(store, S3ImageStore) and store.prefix == "images/"
    assert "'s'" not in repr(Settings(s3_secret_access_key="s"))  # the secret is not printed
