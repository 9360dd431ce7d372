"""verify_webhook: Standard Webhooks signatures computed here independently and as the gateway's
deliverer signs them, the X-Mjgate-Signature of gateways before per-user secrets, and a real
callback the live gateway delivered, verified with the user's own secret from the CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import queue
import secrets
import threading
import time

import pytest

from mjgate.client import Client, WebhookVerificationError, verify_webhook
from mjgate.webhooks.delivery import standard_headers as gateway_headers
from tests.fixtures.live import cli

SIGNATURE_HEADER = "X-Mjgate-Signature"  # what gateways before per-user secrets sent


def signature(secret_key: str, body: bytes, timestamp: int) -> str:
    """The older gateways' scheme: hex HMAC-SHA256 of "t.body" keyed with their secret key."""
    mac = hmac.new(secret_key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"

BODY = json.dumps({"id": "1796000000000001", "status": "SUCCESS", "progress": "100%"}).encode()
NOW = 1_800_000_000


def whsec() -> tuple[str, bytes]:
    key = secrets.token_bytes(24)
    return "whsec_" + base64.b64encode(key).decode(), key


def standard_headers(key: bytes, body: bytes = BODY, msg_id: str = "msg_2Kx", timestamp: int = NOW) -> dict:
    """Signed as the Standard Webhooks spec says, by hand: base64(HMAC-SHA256(key, "id.timestamp.body"))."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


def test_standard_webhook_verifies_and_returns_the_payload():
    secret, key = whsec()
    assert verify_webhook(standard_headers(key), BODY, secret, now=NOW) == json.loads(BODY)
    # Header names are case-insensitive; the body may come as text.
    upper = {k.title(): v for k, v in standard_headers(key).items()}
    assert verify_webhook(upper, BODY.decode(), secret, now=NOW + 299)["status"] == "SUCCESS"


def test_the_gateways_own_signing_verifies():
    secret, key = whsec()
    headers = gateway_headers(secret, "msg_42", BODY, NOW)
    assert headers["webhook-signature"] == standard_headers(key, msg_id="msg_42")["webhook-signature"]
    assert verify_webhook(headers, BODY, secret, now=NOW) == json.loads(BODY)


def test_standard_webhook_with_several_signatures():
    secret, key = whsec()
    _, old_key = whsec()
    good = standard_headers(key)["webhook-signature"]
    stale = standard_headers(old_key)["webhook-signature"]
    headers = {**standard_headers(key), "webhook-signature": f"v1a,c29tZQ== {stale} {good}"}
    assert verify_webhook(headers, BODY, secret, now=NOW)["progress"] == "100%"
    # Rotation on the receiving side: the old and the new secret, either matches.
    assert verify_webhook(standard_headers(old_key), BODY, [secret, "whsec_" + base64.b64encode(old_key).decode()],
                          now=NOW)


@pytest.mark.parametrize("case", ["wrong secret", "tampered body", "other id", "too old", "too new", "no v1",
                                  "missing id", "not a number"])
def test_standard_webhook_refusals(case):
    secret, key = whsec()
    headers, body, now = standard_headers(key), BODY, NOW
    if case == "wrong secret":
        secret = whsec()[0]
    elif case == "tampered body":
        body = BODY.replace(b"SUCCESS", b"FAILURE")
    elif case == "other id":
        headers["webhook-id"] = "msg_other"
    elif case == "too old":
        now = NOW + 301
    elif case == "too new":
        now = NOW - 301
    elif case == "no v1":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    elif case == "missing id":
        del headers["webhook-id"]
    elif case == "not a number":
        headers["webhook-timestamp"] = "soon"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, body, secret, now=now)


def test_the_tolerance_is_a_parameter():
    secret, key = whsec()
    verify_webhook(standard_headers(key), BODY, secret, now=NOW + 3000, tolerance_s=3600)
    with pytest.raises(WebhookVerificationError, match="old"):
        verify_webhook(standard_headers(key), BODY, secret, now=NOW + 11, tolerance_s=10)


def test_legacy_signature_as_mjgate_signs_it():
    secret = "the-gateway-secret-key"
    headers = {SIGNATURE_HEADER: signature(secret, BODY, NOW)}
    assert verify_webhook(headers, BODY, secret, now=NOW + 60) == json.loads(BODY)
    # The same computed independently: hex HMAC-SHA256 of "t.body" with the secret as it is.
    mac = hmac.new(secret.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert verify_webhook({"x-mjgate-signature": f"t={NOW},v1={mac}"}, BODY, secret, now=NOW)
    for bad_headers, bad_body, bad_secret, now in [
        (headers, BODY + b" ", secret, NOW),
        (headers, BODY, "another-secret", NOW),
        (headers, BODY, secret, NOW + 301),
        ({SIGNATURE_HEADER: f"t={NOW}"}, BODY, secret, NOW),
        ({}, BODY, secret, NOW),
    ]:
        with pytest.raises(WebhookVerificationError):
            verify_webhook(bad_headers, bad_body, bad_secret, now=now)


def test_before_and_after_the_switch_one_call_accepts_both():
    legacy_secret = "the-gateway-secret-key"
    standard_secret, key = whsec()
    both = [standard_secret, legacy_secret]
    assert verify_webhook({SIGNATURE_HEADER: signature(legacy_secret, BODY, NOW)}, BODY, both, now=NOW)
    assert verify_webhook(standard_headers(key), BODY, both, now=NOW)
    # A request carrying both header sets is genuine if either verifies.
    mixed = {**standard_headers(whsec()[1]), SIGNATURE_HEADER: signature(legacy_secret, BODY, NOW)}
    assert verify_webhook(mixed, BODY, both, now=NOW)


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: queue.Queue = queue.Queue()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_real_callback_from_the_gateway_verifies(world):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
        with Client(world.base_url, world.key) as mj:
            task = mj.imagine("a fox that calls back", notify_hook=hook)
        secret = cli(world.server_env, "user", "webhook-secret", "painter")["secret"]
        assert secret.startswith("whsec_")
        deadline = time.monotonic() + 60
        final = None
        while final is None:
            headers, body = _Receiver.received.get(timeout=max(0.1, deadline - time.monotonic()))
            payload = verify_webhook(headers, body, secret)
            assert payload["id"] == task.id
            if payload["status"] == "SUCCESS":
                final = payload
        assert final["progress"] == "100%"
        assert headers["webhook-id"].startswith("msg_") and "X-Mjgate-Signature" not in headers
        # The gateway's own master key verifies nothing: callbacks are the user's alone.
        for wrong in (world.server_env["MJGATE_SECRET_KEY"], whsec()[0]):
            with pytest.raises(WebhookVerificationError):
                verify_webhook(headers, body, wrong)
    finally:
        server.shutdown()
        server.server_close()
