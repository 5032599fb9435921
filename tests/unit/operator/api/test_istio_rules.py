"""Istio's validation of VirtualService hosts, gateways and retry conditions, at our validation (issue 15, fault 6).

Cases are those of istio/istio's own tests (ValidateWildcardDomain, validateGatewayNames,
validateHTTPRetry, host.Name.Matches), restated for the VirtualService the operator renders.
"""
from __future__ import annotations

import pytest

from autoglm_operator.api.istio_rules import check_hosts, host_error, hosts_overlap, retry_on_ok
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.api.spec import parse_instance
from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.render.desired import validate

GOOD_HOSTS = ["glm.example.com", "*.example.com", "*foo.example.com", "*-foo.example.com", "a" * 63, "example.com.",
              "10.0.0.1", "GLM.Example.com"]
BAD_HOSTS = ["*", "", "foo.*.com", "foo*.bar.com", "a" * 64 + ".com", "glm .example.com", "glm.example.123",
             "x" * 256, "glm_example.com", "-glm.example.com"]


@pytest.mark.parametrize("host", GOOD_HOSTS)
def test_hosts_istio_accepts(host):
    assert host_error(host) is None


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_hosts_istio_refuses(host):
    assert host_error(host)


@pytest.mark.parametrize("a, b, overlap", [
    ("glm.example.com", "glm.example.com", True), ("*.example.com", "glm.example.com", True),
    ("*.com", "*.example.com", True), ("*.local", "glm.ml.svc.cluster.local", True),
    ("glm.example.com", "chat.example.com", False), ("*.example.com", "example.org", False),
])
def test_overlap_is_istios_host_matches(a, b, overlap):
    assert hosts_overlap(a, b) is overlap and hosts_overlap(b, a) is overlap


def test_a_host_covering_the_models_own_service_is_refused():
    with pytest.raises(InvalidSpec, match="overlaps the model's own Service host"):
        check_hosts(["*.svc.cluster.local"], "glm.ml.svc.cluster.local")
    with pytest.raises(InvalidSpec, match="overlaps"):
        check_hosts(["*.example.com", "glm.example.com"], "glm.ml.svc.cluster.local")


@pytest.mark.parametrize("value, ok", [
    ("connect-failure,refused-stream,reset-before-request", True), ("5xx", True), ("gateway-error,503", True),
    ("retriable-status-codes,429", True), ("unavailable,cancelled", True),
    ("5xx, reset", False), ("5XX", False), ("999", False), ("306", False), ("", False), ("5xx,", False), ("timeout", False),
])
def test_retry_on(value, ok):
    assert retry_on_ok(value) is ok


def test_issue_input_star_host_on_a_gateway_is_refused(make_cr):
    """The issue's input: accepted and Ready before, then refused by Istio's webhook as a whole object."""
    cr = make_cr(traffic={"hosts": ["*"], "gateways": ["istio-system/public"]})
    with pytest.raises(InvalidSpec, match=r"spec.traffic: traffic.hosts: '\*' is not allowed with provider istio: .* bound to the mesh gateway"):
        parse_instance(cr)


@pytest.mark.parametrize("traffic, words", [
    ({"gateways": ["public"]}, "spec.traffic.gateways[0]: 'public' does not match"),
    ({"gateways": ["mesh"]}, "spec.traffic.gateways[0]: 'mesh' does not match"),
    ({"gateways": ["istio-system/Public"]}, "does not match"),
    ({"gateways": ["a/b", "a/b"]}, "spec.traffic.gateways: duplicate entries 'a/b'"),
    ({"hosts": ["glm.example.com", "glm.example.com"]}, "spec.traffic.hosts: duplicate entries"),
    ({"hosts": ["foo.*.com"]}, "spec.traffic.hosts[0]: 'foo.*.com' does not match"),
    ({"retries": {"attempts": 1, "retryOn": "5xx, reset"}}, "every retryOn condition must be one Istio accepts"),
])
def test_strings_istio_refuses_are_refused_by_the_schema(make_cr, traffic, words):
    with pytest.raises(InvalidSpec) as refused:
        parse_instance(make_cr(traffic=traffic))
    assert words in str(refused.value)


def test_overlap_with_the_service_host_is_refused_by_validate(make_cr):
    with pytest.raises(InvalidSpec, match="overlaps the model's own Service host"):
        validate(make_cr(traffic={"hosts": ["*.ml.svc.cluster.local"]}), Capabilities(istio=True))
    validate(make_cr(traffic={"hosts": ["glm.example.com", "*.chat.example.org"], "gateways": ["istio-system/public"]}),
             Capabilities(istio=True))
