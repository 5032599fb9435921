"""Which failures the operator logs quietly: those the API server itself says to retry later.

A starting API server (or one whose storage re-lists from etcd) answers 429 TooManyRequests with
"storage is (re)initializing" and a Retry-After (details.retryAfterSeconds) for a second or two.
kopf retries its requests then (kopf/_cogs/clients/api.py `request`: 429 is in its retried errors,
obeying Retry-After), and so do the operator's ticks, but both logged every attempt as an error:
a page of "Request attempt #1/9 failed; will retry: ... APITooManyRequestsError('storage is
(re)initializing' ...)" at each start. They are debug lines now; kopf's last attempt ("failed;
escalating"), every other error and a 429 that outlasts the retries stay visible.
"""
from __future__ import annotations

import logging

from kubernetes.client.exceptions import ApiException

TOO_MANY_REQUESTS = 429
KOPF_RETRY = "failed; will retry: "  # kopf: f"Request attempt {idx} failed; will retry: {what} -> {e!r}"
KOPF_TOO_MANY = "APITooManyRequestsError("  # kopf/_cogs/clients/errors.py, the repr of the 429 error


def retry_later(exc: BaseException) -> bool:
    """An API error the server marked as "retry later" (429), from the Kubernetes client."""
    return isinstance(exc, ApiException) and exc.status == TOO_MANY_REQUESTS


def kopf_retry_later(message: str) -> bool:
    """A kopf line announcing one more attempt of a request the API server answered with 429."""
    return message.startswith("Request attempt ") and KOPF_RETRY in message and f"-> {KOPF_TOO_MANY}" in message


class RetryLaterAtDebug(logging.Filter):
    """Put on the handlers of the root logger (kopf logs from many loggers): kopf's retry lines for
    a 429 become DEBUG records, shown only where debug logging is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and kopf_retry_later(record.getMessage()):
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def quiet_retry_later() -> None:
    """Install the filter on the root logger's handlers (after kopf.configure made them)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RetryLaterAtDebug) for f in handler.filters):
            handler.addFilter(RetryLaterAtDebug())
