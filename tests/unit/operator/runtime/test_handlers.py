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


def test_activities_have_ids_a_reader_understands() -> None:
    """kopf logs "Activity '<id>' succeeded" at start and stop; without an id that is the function's
    qualname, 'build_registry.<locals>.sweep', in every normal run's log."""
    registry = build_registry(_Reconciler(), resync_seconds=2)  # type: ignore[arg-type]
    ids = sorted(h.id for h in registry._activities.get_all_handlers())
    assert ids == ["login_via_client", "start-ticks", "stop-ticks", "sweep-node-groups"]
