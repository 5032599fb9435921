"""Which revision takes traffic: the small decision a canary state machine will later replace.

Traffic moves to a new revision only once its Deployment is Ready, so users never wait for weights
to load; then the old revision is retired (pruned), so the model is never loaded twice for long.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoglm_operator.status.readiness import revision_ready, serves_nothing


def serving_revision(current: str | None, desired: str, deployments: Mapping[str, Mapping[str, Any]]) -> str:
    """The revision that should take traffic now.

    `current` is the revision recorded as serving in the status (None for a new resource) and
    `deployments` maps each revision to its live Deployment. The old revision keeps traffic while
    the new one starts, unless it serves nothing anyway (`serves_nothing`): then waiting would
    protect nobody.
    """
    if current is None or current == desired or serves_nothing(deployments.get(current)):
        return desired
    return desired if revision_ready(deployments.get(desired)) else current


def revisions_to_keep(serving: str, desired: str) -> set[str]:
    """Every other revision's Deployment is retired."""
    return {serving, desired}
