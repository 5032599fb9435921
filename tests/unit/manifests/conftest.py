"""A real Lua interpreter (lupa) for the Argo CD customizations, which Argo CD runs as Lua."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from lupa import LuaRuntime


def _to_lua(lua: LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def _to_py(value: Any) -> Any:
    if hasattr(value, "items"):
        return {k: _to_py(v) for k, v in value.items()}
    return value


@pytest.fixture
def run_lua() -> Callable[[str, dict[str, Any]], Any]:
    """run_lua(script, obj): the script's return value, with `obj` bound as Argo CD binds it."""

    def run(script: str, obj: dict[str, Any]) -> Any:
        lua = LuaRuntime(unpack_returned_tuples=True)
        return _to_py(lua.eval(f"function(obj) {script} end")(_to_lua(lua, obj)))

    return run
