"""Prometheus metrics, defined once."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("mjgate_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("mjgate_http_request_seconds", "HTTP request latency", ["route"])

POLLER_BATCH = Histogram("mjgate_poller_batch_size", "Tasks claimed per poller cycle",
                         buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000))
POLLER_LAG = Histogram("mjgate_poller_lag_seconds", "How late the oldest claimed task was polled")
POLLER_CALL_SECONDS = Histogram("mjgate_poller_upstream_call_seconds", "list-by-condition latency", ["channel"])
POLLER_ERRORS = Counter("mjgate_poller_errors_total", "Poller errors", ["channel", "kind"])
TASKS_FINISHED = Counter("mjgate_tasks_finished_total", "Tasks reaching a terminal state", ["status"])
WEBHOOKS = Counter("mjgate_webhook_deliveries_total", "Client webhook delivery attempts", ["result"])

QUEUE_DEPTH = Gauge("mjgate_queue_depth", "Tasks waiting in the gateway queue for a channel with room")
QUEUE_WAIT = Histogram("mjgate_queue_wait_seconds", "How long dispatched tasks waited in the gateway queue",
                       buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600))
DISPATCHED = Counter("mjgate_dispatched_total", "Queued tasks handed to a channel, or expired in the queue",
                     ["result"])
CHANNEL_STATE = Gauge("mjgate_channel_state", "1 for the state each channel is in (enabled, cooldown, "
                      "manual_disabled, auto_disabled)", ["channel", "state"])
CHANNEL_IN_FLIGHT = Gauge("mjgate_channel_in_flight", "Unfinished tasks on a channel with a capacity", ["channel"])
BREAKER_EVENTS = Counter("mjgate_channel_breaker_total", "Circuit breaker changes", ["channel", "event"])
