"""The Kubernetes API client of the operator and the predictor: every request has a deadline.

The Kubernetes Python client waits forever unless a call passes `_request_timeout`. An API server
that accepts a connection and never answers (a dead load-balancer backend, a half-open connection
after a network partition) would then block a reconcile, or the predictor's decision thread, for
good; with a deadline the request fails and the caller's usual retry takes over (the next converge,
the next decision round). Long-running watches are kopf's (aiohttp, its own settings), not made here.
"""
from __future__ import annotations

from typing import Any

import kubernetes

# (connect, read) seconds of each request when its call names none: API requests of the operator
# and the predictor (gets, lists, applies, status patches, discovery) answer in milliseconds to a few
# seconds even for large lists; 30 s of silence is a hung connection, not a slow answer.
REQUEST_TIMEOUT = (5.0, 30.0)


class DeadlineApiClient(kubernetes.client.ApiClient):
    """`kubernetes.client.ApiClient` whose requests default to REQUEST_TIMEOUT. Every generated API
    method ends in `call_api(..., _request_timeout)` (kubernetes-client 29+), so this is the one place."""

    def call_api(self, method: str, url: str, header_params: Any = None, body: Any = None, post_params: Any = None,
                 _request_timeout: Any = None) -> Any:
        return super().call_api(method, url, header_params, body, post_params,
                                REQUEST_TIMEOUT if _request_timeout is None else _request_timeout)


def api_client() -> DeadlineApiClient:
    """In a pod: its ServiceAccount; elsewhere: the current kubeconfig context (as kopf's own login does).

    Raises kubernetes.config.ConfigException when neither exists."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return DeadlineApiClient()
