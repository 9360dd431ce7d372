"""mjgate's Python client: Midjourney tasks over the midjourney-proxy dialect.

Works against mjgate, new-api and midjourney-proxy servers. It imports nothing of the gateway
itself (no SQLAlchemy, no app, no simulator), so it is cheap to import in scripts and notebooks.

    from mjgate.client import Client
    with Client() as mj:                      # the URL and key `mjgate login` stored
        grid = mj.imagine("a red fox in the snow", on_progress=lambda t: print(t.progress))
        mj.download(grid, "fox.png", split=True)
        upscale = mj.action(grid, "U1")
"""

from mjgate.client.aio import AsyncClient
from mjgate.client.config import ClientConfig, config_path, load_config, save_config
from mjgate.client.errors import (
    ActionNotAvailable, AuthError, GatewayUnreachable, MjgateError, NotFoundError, QuotaError, RateLimitError,
    RefusedError, TaskFailedError, TaskTimeoutError, UnsupportedError, WebhookVerificationError,
)
from mjgate.client.models import Button, SubmitAnswer, Task
from mjgate.client.sync import Client
from mjgate.client.webhooks import verify_webhook

__all__ = [
    "ActionNotAvailable", "AsyncClient", "AuthError", "Button", "Client", "ClientConfig", "GatewayUnreachable",
    "MjgateError", "NotFoundError", "QuotaError", "RateLimitError", "RefusedError", "SubmitAnswer", "Task",
    "TaskFailedError", "TaskTimeoutError", "UnsupportedError", "WebhookVerificationError", "config_path",
    "load_config", "save_config", "verify_webhook",
]
