"""Which optional APIs the cluster serves (KEDA, Istio, KubeEdge, Gateway API, InferencePool): an input of validation and rendering.

Discovered by reconcile.discovery (or given to `autoglm render --capabilities`), checked against
the spec (api.spec.check_capabilities) and used by the renderers to adapt instead of failing to
apply; a leaf type, so the modules that only need it (reconcile.kinds) import nothing else.
"""
from __future__ import annotations

import dataclasses

from autoglm_operator.api.schema import InvalidSpec


class MissingCapability(InvalidSpec):
    """A spec the cluster cannot serve: `needs` are the Capabilities field names it lacks, so
    `autoglm render` can say which to add to --capabilities (the operator discovers them)."""

    def __init__(self, message: str, *needs: str) -> None:
        super().__init__(message)
        self.needs = needs


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """Which optional APIs the cluster serves; rendering adapts instead of failing to apply."""

    keda: bool = False
    istio: bool = False
    kubeedge: bool = False
    gateway_api: bool = False  # HTTPRoute (gateway.networking.k8s.io/v1)
    inference_pool: bool = False  # InferencePool (inference.networking.k8s.io/v1), with HTTPRoute
    # The served HTTPRoute schema has RequestMirror `percent` (standard channel since Gateway API v1.3,
    # experimental since v1.2); without it a mirror filter would copy every request.
    mirror_percent: bool = False

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every capability name, in field order: the one source of the names `parse` accepts."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def parse(cls, text: str) -> Capabilities:
        """From a comma-separated list such as `keda,istio` or `gateway_api,mirror_percent,inference_pool`;
        the providers' spelling (`gateway-api`, `inference-pool`) is accepted too. Raises ValueError
        naming the unknown ones and every valid name."""
        names = {part.strip().replace("-", "_") for part in text.split(",") if part.strip()}
        unknown = sorted(names - set(cls.names()))
        if unknown:
            raise ValueError(f"unknown capabilities {', '.join(unknown)} (valid: {', '.join(cls.names())})")
        return cls(**{name: True for name in names})
