"""kopf wiring: nothing holds a resource's deletion (issue 15, fault 1)."""
from __future__ import annotations

import kopf

from autoglm_operator.runtime.handlers import build_registry


class _Reconciler:
    def request(self, namespace: str, name: str) -> None:
        pass


def test_no_handler_makes_kopf_put_a_finalizer_on_resources() -> None:
    """kopf adds its finalizer for timers, daemons and non-optional delete handlers; its release
    then depends on rights (a namespace deletion takes the operator's Role first) and on the
    operator running at all. Children go by owner reference, so none of those may exist."""
    registry = build_registry(_Reconciler(), resync_seconds=2)  # type: ignore[arg-type]
    assert not registry._spawning.get_all_handlers(), "a kopf timer or daemon forces a finalizer"
    holding = [h.id for h in registry._changing.get_all_handlers() if h.requires_finalizer]
    assert not holding, f"these handlers make kopf add a finalizer: {holding}"
    assert isinstance(registry, kopf.OperatorRegistry)
