"""Every request of the shared client has a deadline unless its call names one."""
from __future__ import annotations

from typing import Any

import kubernetes
import pytest

from autoglm_operator.api.kube_client import REQUEST_TIMEOUT, DeadlineApiClient


class Answered(Exception):
    """Stops the request where it would reach the network."""


@pytest.fixture
def requests_made(monkeypatch: pytest.MonkeyPatch) -> tuple[DeadlineApiClient, list[Any]]:
    api = DeadlineApiClient(kubernetes.client.Configuration(host="http://127.0.0.1:9"))
    timeouts: list[Any] = []

    def request(method: str, url: str, headers: Any = None, body: Any = None, post_params: Any = None,
                _request_timeout: Any = None) -> Any:
        timeouts.append(_request_timeout)
        raise Answered

    monkeypatch.setattr(api.rest_client, "request", request)
    return api, timeouts


def test_a_generated_call_without_a_timeout_gets_the_deadline(requests_made):
    api, timeouts = requests_made
    with pytest.raises(Answered):
        kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object("autoglm.io", "v1alpha1", "ns", "x", "y")
    with pytest.raises(Answered):
        kubernetes.client.CoreV1Api(api).list_namespaced_pod("ns", label_selector="a=b", _preload_content=False)
    assert timeouts == [REQUEST_TIMEOUT, REQUEST_TIMEOUT]


def test_a_call_that_names_its_timeout_keeps_it(requests_made):
    api, timeouts = requests_made
    with pytest.raises(Answered):
        kubernetes.client.CoreV1Api(api).read_namespace("ns", _request_timeout=(1.0, 2.0))
    assert timeouts == [(1.0, 2.0)]
