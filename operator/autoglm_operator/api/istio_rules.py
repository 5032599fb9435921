"""Istio's own validation of the strings the spec passes into a VirtualService, applied at our validation.

Istio's admission webhook refuses a whole VirtualService for one bad host, gateway or retry
condition; then the operator's apply fails and the model has no route. The rules here are those
of istio/istio `pkg/config/validation` (`ValidateVirtualService`, `validateGatewayNames`,
`validateHTTPRetry`) and `pkg/config/validation/agent` (`ValidateWildcardDomain`), and
`pkg/config/host` (`Name.Matches`), restated for the VirtualService the operator renders: it is
always bound to the `mesh` gateway (in-cluster callers), and its first host is the model's Service.
"""
from __future__ import annotations

import ipaddress
import re

from autoglm_operator.api.schema import InvalidSpec

_LABEL = r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?"
# A host name whose first label may be `*`, `*foo` or `*-foo` (Istio's wildcardPrefix), with an
# optional final dot; the shape only: lengths and the numeric top-level domain are checked in Python.
HOST = rf"^(\*|(\*|\*-)?{_LABEL})(\.{_LABEL})*\.?$"
HOST_MAX_LENGTH = 255

# Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on conditions Istio accepts (supportedRetryOnPolicies).
RETRY_ON_POLICIES = (
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx", "refused-stream",
    "retriable-status-codes", "retriable-headers", "envoy-ratelimited", "http3-post-connect-failure",
    "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
)
# Istio also accepts any status code Go's net/http has a text for (http.StatusText(code) != "").
HTTP_STATUS_CODES = tuple(str(code) for code in (
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
    *range(400, 419), 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, *range(500, 509), 510, 511,
))
RETRY_ON = RETRY_ON_POLICIES + HTTP_STATUS_CODES


def retry_on_ok(value: str) -> bool:
    """Every comma-separated condition is one Istio accepts (no spaces: Istio does not trim them)."""
    return all(part in RETRY_ON for part in value.split(","))


def host_error(host: str) -> str | None:
    """Why Istio refuses `host` in a VirtualService bound to the mesh, or None (agent.ValidateWildcardDomain)."""
    if not host or len(host) > HOST_MAX_LENGTH:
        return f"{host[:80]!r} must be 1 to {HOST_MAX_LENGTH} characters"
    if host == "*":
        return ("'*' is not allowed: the VirtualService is always bound to the mesh gateway (in-cluster callers), "
                "where Istio refuses a wildcard host; list the host names the gateway serves (e.g. *.example.com)")
    if _is_ip(host):
        return None
    if re.fullmatch(HOST, host) is None:
        return (f"{host[:80]!r} is not a host name (DNS labels of letters, digits and '-', at most 63 characters each; "
                "only the first label may be '*', '*name' or '*-name')")
    last = host.rstrip(".").rsplit(".", 1)[-1]
    if last.isdigit():
        return f"{host[:80]!r}: the top-level domain {last!r} cannot be all-numeric"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def hosts_overlap(a: str, b: str) -> bool:
    """Istio's host.Name.Matches: equal, or one wildcard covers the other (`*.com` covers `glm.example.com`)."""
    if a.startswith("*") and b.startswith("*"):
        shorter, longer = sorted((a, b), key=len)
        return longer[1:].endswith(shorter[1:])
    if a.startswith("*"):
        return b.endswith(a[1:])
    if b.startswith("*"):
        return a.endswith(b[1:])
    return a == b


def check_hosts(hosts: list[str], service_host: str, path: str = "spec.traffic.hosts") -> None:
    """Refuse what Istio would refuse in the rendered `hosts: [service_host, *hosts]`: a bad host, `*`
    (bound to mesh), or two hosts that overlap (a duplicate, or a wildcard covering the model's Service)."""
    for i, host in enumerate(hosts):
        error = host_error(host)
        if error:
            raise InvalidSpec(f"{path}[{i}]: {error}")
    rendered = [service_host, *hosts]
    for i, first in enumerate(rendered):
        for second in rendered[i + 1:]:
            if hosts_overlap(first, second):
                which = "the model's own Service host" if first == service_host else repr(first)
                raise InvalidSpec(f"{path}: {second!r} overlaps {which} (Istio refuses duplicate hosts in a VirtualService)")
