"""The S3-compatible image store (SPEC §3.4) on aiobotocore, against a real S3 server (moto, signatures
enforced): copies and streamed GETs through the gateway, multipart uploads, virtual-host addressing,
and credentials from the default chain (instance metadata handing out STS credentials)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import uuid

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from mjgate.app import create_app
from mjgate.config import Settings
from mjgate.images.s3 import S3Client, S3Error, S3ImageStore
from mjgate.images.store import build_image_store
from mjgate.models import Task
from tests.fixtures.app import gateway_settings
from tests.fixtures.relay import add_simulator_channel, make_relay

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _client(moto_s3, **overrides) -> S3Client:
    options = dict(bucket=moto_s3.bucket, region=moto_s3.region, access_key_id=moto_s3.access_key_id,
                   secret_access_key=moto_s3.secret_access_key, endpoint_url=moto_s3.endpoint)
    return S3Client(**{**options, **overrides})


@pytest.fixture
async def bucket(moto_s3):
    """Our client on the test bucket, with the right credentials."""
    client = _client(moto_s3)
    try:
        yield client
    finally:
        await client.close()


# ----------------------------------------------------------------------------- moto checks signatures

async def test_moto_enforces_signatures(moto_s3, bucket, tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"payload")
    await bucket.put_file("auth-check/x.bin", path, 7, "application/octet-stream")
    assert await bucket.get_bytes("auth-check/x.bin") == b"payload"

    wrong = _client(moto_s3, secret_access_key="not-the-secret", max_attempts=1)
    unknown = _client(moto_s3, access_key_id="AKIANOSUCHKEY0000000", max_attempts=1)
    try:
        with pytest.raises(S3Error, match="403 SignatureDoesNotMatch"):
            await wrong.get_bytes("auth-check/x.bin")
        with pytest.raises(S3Error, match="403 SignatureDoesNotMatch"):
            await wrong.put_file("auth-check/y.bin", path, 7, "application/octet-stream")
        with pytest.raises(S3Error, match="403 InvalidAccessKeyId"):
            await unknown.get_bytes("auth-check/x.bin")
    finally:
        await wrong.close()
        await unknown.close()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{moto_s3.endpoint}/{moto_s3.bucket}/auth-check/x.bin") as unsigned:
            assert unsigned.status == 403
    assert await bucket.get_bytes("auth-check/y.bin") is None


def test_client_settings_are_checked():
    with pytest.raises(ValueError, match="addressing"):
        S3Client(bucket="b", region="us-east-1", addressing="sideways")
    with pytest.raises(ValueError, match="both"):
        S3Client(bucket="b", region="us-east-1", access_key_id="k")
    with pytest.raises(ValueError, match="http"):
        S3Client(bucket="b", region="us-east-1", endpoint_url="ftp://minio.local")


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
    direct = await bucket.get(key)
    async with direct["Body"]:
        assert direct["ETag"] == etag

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
    await bucket.delete(key)
    assert await bucket.get_bytes(key) is None
    served = await client.get(task["imageUrl"])
    assert served.status_code == 200 and served.content == original


# ----------------------------------------------------------------------------- the store on its own

async def test_put_spools_to_a_temporary_file_and_enforces_the_size_limit(bucket, simulator_session, tmp_path):
    spool = tmp_path / "spool"
    store = S3ImageStore(bucket, "direct/", max_bytes=2 << 20, spool_dir=spool)
    size = 1536 * 1024  # big-image serves exactly int(mb * 1 MiB) bytes
    async with aiohttp.ClientSession() as http, http.get(simulator_session.base_url + "/__sim/big-image?mb=1.5") as resp:
        key = await store.put("1234567890123456", resp)
    assert key == "direct/56/1234567890123456.png"
    stored = await bucket.get_bytes(key)
    assert len(stored) == size
    assert list(spool.iterdir()) == []  # the temporary file is gone

    small = S3ImageStore(bucket, "direct/", max_bytes=1 << 20, spool_dir=spool)
    async with aiohttp.ClientSession() as http, http.get(simulator_session.base_url + "/__sim/big-image?mb=1.5") as resp:
        with pytest.raises(ValueError, match="larger than"):
            await small.put("6543210987654321", resp)
    assert await bucket.get_bytes("direct/21/6543210987654321.png") is None
    assert list(spool.iterdir()) == []


def test_s3_store_needs_a_bucket_and_takes_keys_or_the_default_chain(tmp_path):
    with pytest.raises(ValueError, match="MJGATE_S3_BUCKET"):
        build_image_store(Settings(data_dir=tmp_path, image_store="s3"), None)
    with pytest.raises(ValueError, match="both"):
        build_image_store(Settings(data_dir=tmp_path, image_store="s3", s3_bucket="b", s3_access_key_id="k"), None)
    assert build_image_store(Settings(data_dir=tmp_path, image_store="none"), None) is None
    store = build_image_store(Settings(data_dir=tmp_path, image_store="s3", s3_bucket="b", s3_access_key_id="k",
                                       s3_secret_access_key="s", s3_endpoint_url="http://127.0.0.1:9000",
                                       s3_addressing="virtual"), None)
    assert isinstance(store, S3ImageStore) and store.prefix == "images/" and store.client.addressing == "virtual"
    chain = build_image_store(Settings(data_dir=tmp_path, image_store="s3", s3_bucket="b"), None)
    assert chain.client._keys == {}  # no keys given: botocore's default credential chain
    assert "'s'" not in repr(Settings(s3_secret_access_key="s"))  # the secret is not printed


# ----------------------------------------------------------------------------- what the library brings

async def test_big_images_go_up_in_parts(bucket, tmp_path):
    size = 11 * (1 << 20) + 12345  # three parts of 5 MiB, 5 MiB and the rest
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(size))
    multipart = S3Client(bucket=bucket.bucket, region=bucket.region, endpoint_url=bucket.endpoint_url,
                         access_key_id=bucket._keys["aws_access_key_id"],
                         secret_access_key=bucket._keys["aws_secret_access_key"], part_bytes=5 << 20)
    try:
        await multipart.put_file("parts/big.bin", path, size, "image/png")
        answer = await multipart.get("parts/big.bin")
        async with answer["Body"] as body:
            assert await body.read() == path.read_bytes()
        assert answer["ETag"].strip('"').endswith("-3")  # S3's ETag of a three-part upload
        small = tmp_path / "small.bin"
        small.write_bytes(b"x" * 1000)
        await multipart.put_file("parts/small.bin", small, 1000, "image/png")
        answer = await multipart.get("parts/small.bin")
        async with answer["Body"]:
            assert "-" not in answer["ETag"]  # one plain PUT
        uploads = await (await multipart.client()).list_multipart_uploads(Bucket=multipart.bucket)
        assert not uploads.get("Uploads"), uploads  # nothing left half-uploaded
    finally:
        await multipart.close()


class _LoopbackResolver(aiohttp.abc.AbstractResolver):
    """Resolves every name to 127.0.0.1 and remembers the names: virtual-host buckets without DNS."""

    def __init__(self):
        self.asked: list[str] = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.asked.append(host)
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self):
        pass


async def test_virtual_host_addressing(moto_s3, tmp_path):
    resolver = _LoopbackResolver()
    client = _client(moto_s3, endpoint_url=f"http://s3.mjgate.test:{moto_s3.port}", addressing="virtual",
                     connector_args={"resolver": resolver})
    try:
        path = tmp_path / "v.png"
        path.write_bytes(b"\x89PNG virtual")
        await client.put_file("virtual/v.png", path, path.stat().st_size, "image/png")
        assert await client.get_bytes("virtual/v.png") == path.read_bytes()
    finally:
        await client.close()
    assert set(resolver.asked) == {f"{moto_s3.bucket}.s3.mjgate.test"}  # the bucket is in the host name


@pytest.fixture
async def instance_metadata(moto_s3):
    """An EC2 instance metadata service (IMDSv2) on loopback that hands out STS credentials of the
    moto role, as an instance profile does; the process's AWS configuration points only at it."""
    sts = moto_s3.boto3("sts")
    creds = sts.assume_role(RoleArn=moto_s3.role_arn, RoleSessionName="mjgate-test")["Credentials"]
    calls: list[str] = []
    token = "imds-token-" + uuid.uuid4().hex

    async def put_token(request):
        calls.append("token")
        return web.Response(text=token)

    def authorized(request) -> bool:
        return request.headers.get("X-aws-ec2-metadata-token") == token

    async def role_name(request):
        calls.append("role")
        return web.Response(text="mjgate-image-store") if authorized(request) else web.Response(status=401)

    async def role_credentials(request):
        calls.append("credentials")
        if not authorized(request):
            return web.Response(status=401)
        return web.json_response({"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": creds["AccessKeyId"],
                                  "SecretAccessKey": creds["SecretAccessKey"], "Token": creds["SessionToken"],
                                  "Expiration": creds["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")})

    app = web.Application()
    app.router.add_put("/latest/api/token", put_token)
    app.router.add_get("/latest/meta-data/iam/security-credentials/", role_name)
    app.router.add_get("/latest/meta-data/iam/security-credentials/mjgate-image-store", role_credentials)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                env.delenv(name)
        env.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        env.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{port}/")
        yield {"calls": calls, "access_key_id": creds["AccessKeyId"]}
    await runner.cleanup()


async def test_default_chain_uses_instance_sts_credentials(moto_s3, instance_metadata, tmp_path):
    assert instance_metadata["access_key_id"].startswith("ASIA")  # temporary STS credentials
    settings = Settings(data_dir=tmp_path, image_store="s3", s3_bucket=moto_s3.bucket, s3_region=moto_s3.region,
                        s3_endpoint_url=moto_s3.endpoint, s3_prefix="chain/")
    store = build_image_store(settings, None)
    try:
        path = tmp_path / "c.png"
        path.write_bytes(b"\x89PNG chain")
        await store.client.put_file("chain/c.png", path, path.stat().st_size, "image/png")
        assert await store.client.get_bytes("chain/c.png") == path.read_bytes()
        credentials = await (await store.client.client())._get_credentials().get_frozen_credentials()
        assert credentials.access_key == instance_metadata["access_key_id"]
    finally:
        await store.close()
    assert {"token", "role", "credentials"} <= set(instance_metadata["calls"])


class _FlakyProxy:
    """A TCP proxy in front of moto that drops the first `drops` connections unanswered."""

    def __init__(self, target_port: int, drops: int):
        self.target_port = target_port
        self.drops = drops
        self.connections = 0

    async def handle(self, reader, writer):
        self.connections += 1
        if self.connections <= self.drops:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)


async def test_dropped_connections_are_retried(moto_s3, tmp_path):
    proxy = _FlakyProxy(moto_s3.port, drops=2)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = _client(moto_s3, endpoint_url=f"http://127.0.0.1:{port}", max_attempts=4)
    try:
        path = tmp_path / "r.png"
        path.write_bytes(b"\x89PNG retried")
        await client.put_file("retry/r.png", path, path.stat().st_size, "image/png")
        assert proxy.connections >= 3  # two dropped, then answered
        assert await client.get_bytes("retry/r.png") == path.read_bytes()
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


@sqlite_only
async def test_split_parts_and_own_image_urls_come_from_the_bucket(client, db, app, simulator_session, bucket,
                                                                  s3_prefix):
    """split_images parts are kept in the bucket; an own image URL given back is read from there."""
    relay = await make_relay(client, db)
    await add_simulator_channel(db, simulator_session)
    answer = (await client.post("/midjourney/imagine", json={"prompt": "a split grid", "split_images": True,
                                                             "async": True}, headers=relay.headers)).json()
    mj_id = answer["task_id"]
    await relay.wait(mj_id)
    await app.state.image_copier.drain()
    grid = await bucket.get_bytes(await _stored_key(db, mj_id))
    item = (await client.post("/midjourney/tasks", json={"id": mj_id}, headers=relay.headers)).json()
    urls = item["image_urls"]
    first = await client.get(urls[0])
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    for n in range(1, 5):
        assert await bucket.get_bytes(f"{s3_prefix}{mj_id[-2:]}/{mj_id}-{n}.png") is not None
    assert await bucket.get_bytes(f"{s3_prefix}{mj_id[-2:]}/{mj_id}-1.png") == first.content

    simulator_session.restart()  # the upstream forgets the image: only the bucket has it now
    described = await client.post("/midjourney/describe", json={"image_url": item["image_url"], "async": True},
                                  headers=relay.headers)
    assert described.status_code == 200, described.text
    sent = [r for r in simulator_session.requests() if r["path"].endswith("/submit/describe")][-1]["json"]["base64"]
    assert base64.b64decode(sent.split(",", 1)[1]) == grid
    again = await client.get(urls[3])  # cut earlier, served from the bucket without the upstream
    assert again.status_code == 200 and again.content == await bucket.get_bytes(f"{s3_prefix}{mj_id[-2:]}/{mj_id}-4.png")
