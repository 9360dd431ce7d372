"""S3 clients for the image store, side by side: obstore and aiobotocore against moto's S3 server.

    .venv/bin/python bench/s3_clients.py [--sizes-mb 1,50] [--runs 3] [--clients obstore,aiobotocore]

For each client and object size: the time to PUT an object streamed from a local file in 64 KiB
chunks (what the store does with an upstream image: spooled to a temporary file, then uploaded;
multipart above 8 MiB), the time to GET it back streamed in 64 KiB chunks (what the image relay
does), throughput in MB/s (median of --runs), and the growth of the process's peak RSS over the
PUT and over the GET, each measured in a fresh process. Also: install size of the client and
its dependencies that mjgate does not already have, their count, and the import time.

moto runs in its own process with the project's interpreter (MJGATE_BENCH_MOTO_PYTHON overrides);
a client that is not installed in the interpreter running this file is skipped with a note (the
gateway pins only the one it uses; docs/benchmarks-s3.md says how the other was installed).
moto is a Python server, so absolute figures are moto's as much as the client's: compare the rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUCKET = "bench"
REGION = "us-east-1"
KEY_ID, SECRET = "AKIABENCH0000000000", "bench-secret"
CHUNK = 64 * 1024
PART = 8 << 20


def _rss_kib() -> int:
    """The current resident set size."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() // 1024


class PeakRss:
    """Samples the RSS every 2 ms in a thread: the peak above the RSS when it started."""

    def __enter__(self):
        import threading

        self.baseline = self.peak = _rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_kib())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_kib())

    @property
    def growth_kib(self) -> int:
        return self.peak - self.baseline


async def _chunks(path: Path):
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


# ----------------------------------------------------------------------------- the two clients

class ObstoreClient:
    def __init__(self, endpoint: str):
        from obstore.store import S3Store

        self.store = S3Store(BUCKET, endpoint=endpoint, region=REGION, access_key_id=KEY_ID,
                             secret_access_key=SECRET, virtual_hosted_style_request=False,
                             client_options={"allow_http": True})

    async def put(self, key: str, path: Path) -> None:
        import obstore

        await obstore.put_async(self.store, key, path, attributes={"Content-Type": "image/png"}, chunk_size=PART,
                                max_concurrency=2)

    async def get(self, key: str) -> int:
        import obstore

        result = await obstore.get_async(self.store, key)
        size = 0
        async for chunk in result.stream(min_chunk_size=CHUNK):
            size += len(chunk)
        return size

    async def close(self) -> None:
        # obstore 0.12.1 can abort the process (SIGABRT) when a store is still alive at interpreter
        # exit; dropping it first avoids that (3 of 20 runs aborted without this line, 0 of 20 with it).
        del self.store


class AiobotocoreClient:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.client = None

    async def _client(self):
        if self.client is None:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session

            self._context = get_session().create_client(
                "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                aws_secret_access_key=SECRET,
                config=AioConfig(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 3}))
            self.client = await self._context.__aenter__()
        return self.client

    async def put(self, key: str, path: Path) -> None:
        client = await self._client()
        size = path.stat().st_size
        if size <= PART:
            with open(path, "rb") as body:
                await client.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="image/png")
            return
        # aiobotocore has no transfer manager: multipart is ours to write.
        upload = await client.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType="image/png")
        parts = []
        try:
            with open(path, "rb") as f:
                number = 1
                while data := f.read(PART):
                    done = await client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"],
                                                    PartNumber=number, Body=data)
                    parts.append({"PartNumber": number, "ETag": done["ETag"]})
                    number += 1
            await client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"],
                                                   MultipartUpload={"Parts": parts})
        except BaseException:
            await client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"])
            raise

    async def get(self, key: str) -> int:
        client = await self._client()
        answer = await client.get_object(Bucket=BUCKET, Key=key)
        size = 0
        async with answer["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                size += len(chunk)
        return size

    async def close(self) -> None:
        if self.client is not None:
            await self._context.__aexit__(None, None, None)


CLIENTS = {"obstore": ObstoreClient, "aiobotocore": AiobotocoreClient}
MODULES = {"obstore": "obstore", "aiobotocore": "aiobotocore"}


# ----------------------------------------------------------------------------- one measurement, own process

async def _child(client_name: str, op: str, endpoint: str, key: str, path: Path) -> dict:
    """One PUT of path to key, or one GET of key (put there by an earlier child), timed."""
    client = CLIENTS[client_name](endpoint)
    if isinstance(client, AiobotocoreClient):
        await client._client()  # built before the clock and the RSS baseline, as obstore's is
    try:
        with PeakRss() as rss:
            started = time.perf_counter()
            if op == "put":
                await client.put(key, path)
            else:
                assert await client.get(key) == path.stat().st_size
            seconds = time.perf_counter() - started
        return {"seconds": seconds, "rss_growth_kib": rss.growth_kib}
    finally:
        await client.close()


def measure(client_name: str, op: str, endpoint: str, key: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", client_name, op, endpoint, key, str(path)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONFAULTHANDLER": "1",
                                                              "RUST_BACKTRACE": "1"})
    if out.returncode != 0:
        raise RuntimeError(f"{client_name} {op} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _build(client_name: str) -> None:
    client = CLIENTS[client_name]("http://127.0.0.1:9")
    if isinstance(client, AiobotocoreClient):
        await client._client()  # botocore loads its service model here
    await client.close()


def start_up_seconds(client_name: str) -> float:
    """Importing the client and building it, in a fresh process (median of 3)."""
    code = ("import asyncio, sys, time; t = time.perf_counter(); "
            f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import s3_clients; "
            f"asyncio.run(s3_clients._build({client_name!r})); print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.split()[-1]) for _ in range(3)]
    return statistics.median(runs)


def footprint(distributions: list[str]) -> tuple[int, float]:
    """(count, MB on disk) of the given installed distributions."""
    from importlib import metadata

    total = 0
    for name in distributions:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            located = Path(dist.locate_file(file))
            if located.is_file():
                total += located.stat().st_size
    return len(distributions), total / 1e6


# What each client brings beyond requirements.lock (pip install CLIENT into a venv holding the lock).
EXTRA_DISTRIBUTIONS = {
    "obstore": ["obstore"],
    "aiobotocore": ["aiobotocore", "botocore", "aioitertools", "jmespath", "python-dateutil", "six", "urllib3",
                    "wrapt"],
}


def start_moto() -> tuple[subprocess.Popen, str]:
    from tests.fixtures.processes import start_and_wait_for

    python = os.environ.get("MJGATE_BENCH_MOTO_PYTHON") or str(ROOT / ".venv/bin/python")
    proc, found = start_and_wait_for([python, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                                     {**os.environ, "PYTHONUNBUFFERED": "1"},
                                     r"Running on (http://127\.0\.0\.1:\d+)", "moto server", 30)
    endpoint = found.group(1)
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"))  # noqa: S310
    return proc, endpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="1,50")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", default="obstore,aiobotocore")
    args = parser.parse_args()
    import importlib.util

    clients = []
    for name in args.clients.split(","):
        if importlib.util.find_spec(MODULES[name]) is None:
            print(f"note: {name} is not installed in {sys.executable}; skipped", file=sys.stderr)
        else:
            clients.append(name)
    sizes = [float(s) for s in args.sizes_mb.split(",")]
    moto, endpoint = start_moto()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = {}
            for mb in sizes:
                path = Path(tmp) / f"{mb:g}mb.bin"
                path.write_bytes(os.urandom(int(mb * (1 << 20))))
                files[mb] = path
            for name in clients:
                for mb in sizes:
                    for op in ("put", "get"):  # each GET reads what the PUT of the same run wrote
                        results = [measure(name, op, endpoint, f"{name}/{mb:g}/{i}", files[mb])
                                   for i in range(args.runs)]
                        seconds = statistics.median(r["seconds"] for r in results)
                        rss = max(r["rss_growth_kib"] for r in results)
                        rows.append((name, f"{mb:g} MB", op.upper(), seconds * 1000, mb / seconds, rss / 1024))
    finally:
        moto.terminate()
        moto.wait(timeout=10)

    cpu = re.sub(r"\s+", " ", next((line.split(":", 1)[1] for line in Path("/proc/cpuinfo").read_text().splitlines()
                                    if line.startswith("model name")), platform.processor())).strip()
    print(f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}; "
          f"moto server, median of {args.runs} runs, each in a fresh process\n")
    print("| client | object | op | time ms | MB/s | peak RSS growth MB |")
    print("|---|---|---|---:|---:|---:|")
    for name, size, op, ms, mbps, rss in rows:
        print(f"| {name} | {size} | {op} | {ms:.0f} | {mbps:.1f} | {rss:.1f} |")
    print("\n| client | version | packages beyond requirements.lock | their size on disk MB | import + build client s |")
    print("|---|---|---:|---:|---:|")
    from importlib import metadata

    for name in clients:
        count, mb = footprint(EXTRA_DISTRIBUTIONS[name])
        print(f"| {name} | {metadata.version(name)} | {count} | {mb:.1f} | {start_up_seconds(name):.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, client_name, op, endpoint, key, path = sys.argv
        print(json.dumps(asyncio.run(_child(client_name, op, endpoint, key, Path(path)))))
    else:
        main()
