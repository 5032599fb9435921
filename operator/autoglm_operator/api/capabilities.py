"""Which optional APIs the cluster serves (KEDA, Istio, KubeEdge): an input of validation and rendering.

Discovered by reconcile.discovery (or given to `autoglm render --capabilities`), checked against
the spec (api.spec.check_capabilities) and used by the renderers to adapt instead of failing to
apply; a leaf type, so the modules that only need it (reconcile.kinds) import nothing else.
"""
from __future__ import annotations

import dataclasses

from autoglm_operator.api.schema import InvalidSpec


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """Which optional APIs the cluster serves; rendering adapts instead of failing to apply."""

    keda: bool = False
    istio: bool = False
    kubeedge: bool = False

    @classmethod
    def parse(cls, text: str) -> Capabilities:
        """From a comma-separated list such as `keda,istio`."""
        names = {part.strip() for part in text.split(",") if part.strip()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(names - known)
        if unknown:
            raise InvalidSpec(f"unknown capabilities {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**{name: True for name in names})
