"""The API server's "retry later" (429) is logged quietly (logs.py)."""
from __future__ import annotations

import io
import logging

from kubernetes.client.exceptions import ApiException

from autoglm_operator.runtime.logs import RetryLaterAtDebug, kopf_retry_later, retry_later

# kopf 1.45's lines, as the operator logged them while the test environment's API server started
STORAGE = ("Request attempt #1/9 failed; will retry: GET https://127.0.0.1:30860/apis/keda.sh/v1alpha1/namespaces/ml/"
           "scaledobjects -> APITooManyRequestsError('storage is (re)initializing', {'kind': 'Status', 'code': 429}, "
           "status=429)")
ESCALATING = ("Request attempt #9/9 failed; escalating: GET https://127.0.0.1:30860/apis/keda.sh/v1alpha1/scaledobjects"
              " -> APITooManyRequestsError('storage is (re)initializing', {'code': 429}, status=429)")
REFUSED = ("Request attempt #1/9 failed; will retry: GET https://127.0.0.1:30860/api/v1/pods -> "
           "ClientConnectorError(ConnectionKey(host='127.0.0.1', port=30860), ConnectionRefusedError(111))")


def test_only_kopf_s_retries_of_a_429_are_recognised() -> None:
    assert kopf_retry_later(STORAGE)
    assert not kopf_retry_later(ESCALATING), "the last attempt stays an error"
    assert not kopf_retry_later(REFUSED), "an unreachable server stays visible"
    assert retry_later(ApiException(status=429)) and not retry_later(ApiException(status=503))
    assert not retry_later(RuntimeError("429"))


def _logged(level: int, *messages: str) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RetryLaterAtDebug())
    logger = logging.getLogger("kopf.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(level)
    try:
        for message in messages:
            logger.error(message)
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_the_filter_hides_kopf_s_429_retries_unless_debug_logging_is_on() -> None:
    assert _logged(logging.INFO, STORAGE, REFUSED, ESCALATING).splitlines() == [REFUSED, ESCALATING]
    assert _logged(logging.DEBUG, STORAGE).splitlines() == [STORAGE]
