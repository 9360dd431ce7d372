"""The midjourney-proxy dialect (SPEC §3.2): routes, request bodies, renderers, webhook payload, errors."""

from mjgate.dialects.mjproxy.render import error_reply as render_error
from mjgate.dialects.mjproxy.routes import install, webhook_payload

NAME = "mjproxy"
PREFIXES = ("/mj/", "/mj-fast/", "/mj-relax/", "/mj-turbo/")

__all__ = ["NAME", "PREFIXES", "install", "render_error", "webhook_payload"]
