"""The traffic split the renderers draw: which revisions get traffic, with which weight or mirror.

Decided by the rollout (rollout.canary, or everything to the serving revision without one) and
drawn by render.istio into the VirtualService; a plain value, so the renderers need nothing above
them to draw it.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Route:
    """What the VirtualService says: weights stable/canary always sum to 100."""

    stable: str
    canary: str | None = None
    weight: int = 0
    mirror: int = 0
    testers: bool = False  # header/cookie routes to the canary

    def __post_init__(self) -> None:
        assert 0 <= self.weight <= 100 and 0 <= self.mirror <= 100
        assert self.canary is not None or (self.weight == 0 and self.mirror == 0)
        assert not (self.mirror and self.weight), "mirror steps run at weight 0"

    @property
    def revisions(self) -> list[str]:
        return [self.stable] + ([self.canary] if self.canary else [])
