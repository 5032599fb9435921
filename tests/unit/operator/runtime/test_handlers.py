"""kopf wiring: nothing holds a resource's deletion (issue 15, fault 1); what is kept per resource goes with it."""
from __future__ import annotations

import queue

import kopf

from autoglm_operator.reconcile.converge import GONE
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


class _GoneReconciler:
    """Every converge finds the resource gone, as when a watch lost its rights in a namespace being
    deleted and no DELETED event came."""

    def request(self, namespace: str, name: str) -> str:
        return GONE


def test_a_resource_a_tick_finds_gone_is_forgotten_by_kopf_too() -> None:
    forgotten: queue.Queue[str] = queue.Queue()
    registry = build_registry(_GoneReconciler(), resync_seconds=0.01, forget=forgotten.put)  # type: ignore[arg-type]
    handlers = {h.id: h.fn for h in registry._activities.get_all_handlers()}
    seen = next(h.fn for h in registry._watching.get_all_handlers() if h.id == "resource")
    seen(namespace="ml", name="glm", body={"metadata": {"uid": "u-1"}, "status": {}}, type=None)
    handlers["start-ticks"]()
    try:
        assert forgotten.get(timeout=10) == "u-1"  # the first resync tick finds it gone
    finally:
        handlers["stop-ticks"]()
    assert forgotten.empty()  # once: the tick stops with the resource
