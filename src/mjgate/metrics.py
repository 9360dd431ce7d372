"""Prometheus metrics, defined once."""

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("mjgate_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("mjgate_http_request_seconds", "HTTP request latency", ["route"])
