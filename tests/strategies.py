"""Hypothesis strategies for hostile `AutoGLMDeployment` resources, shared by unit and e2e tests.

Valid specs are drawn field by field from the typed spec (operator/autoglm_operator/api/spec.py): each field's type,
range, pattern, length, list size, map key and the classes' cross-field RULES, so a new field is
covered without touching this module. Invalid specs are valid ones with one hostile mutation at a
drawn place: a wrong type, a number out of range, a huge or unicode or NaN-like string, an unknown
field, a missing required field, deeply nested junk; or bad canary steps, replica bounds, edge node
labels, or engine flags the operator sets itself.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import typing
from typing import Any, Literal, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from autoglm_operator.api.schema import InvalidSpec, camel, has_default, matches, parse, rules_of, unwrap_optional
from autoglm_operator.api.spec import GROUP, KIND, LABEL_KEY, LABEL_VALUE, NAME_RULE, VERSION, EdgeGroup, Spec

T = TypeVar("T")
INT64 = 2**63 - 1  # the API server's integers
MAX_LIST = 3  # list and map entries drawn per field: enough to hit uniqueness and ordering rules
NAME = r"[a-z]([-a-z0-9]{0,50}[a-z0-9])?"

# Strings a careless parser turns into numbers, or that break a renderer or a regex.
NASTY_STRINGS = st.sampled_from([
    "", " ", "NaN", "nan", "-Infinity", "Infinity", "1e999", "-1", "0x10", "1_000", "null", "true", "{}", "[]",
    "\n", "a\nb", "glm\n", "\x00", "\u202e\u0645\u0631\u062d\u0628\u0627", "\U0001f600", "\ufeff",
    "' OR 1=1 --", "{{name}}", "${HOME}", "../../etc/passwd", "pvc://../x", "pvc://claim/../../x",
    "a" * 64, "a" * 300, "x" * 70_000,
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(), st.text(max_size=40), NASTY_STRINGS,
)
# NaN and infinity included: YAML (`autoglm render`) carries them; JSON to the API server does not (refused).
JUNK = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


def _deeply_nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


def examples(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """`count` reproducible examples of `strategy` (derandomized, generation only), for tests that
    send a whole batch to real services at once instead of one example per hypothesis call."""
    drawn: list[T] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: T) -> None:
        drawn.append(value)

    collect()
    return drawn


# -------------------------------------------------------------------------------------------------
# Valid specs


def _string(meta: typing.Mapping[str, Any]) -> st.SearchStrategy[str]:
    pattern, low, high = meta.get("pattern"), meta.get("minLength") or 0, meta.get("maxLength")
    if pattern:
        strategy = st.from_regex(pattern, fullmatch=pattern.endswith("$"))
        strategy = strategy.filter(lambda s: matches(pattern, s))
    else:
        strategy = st.text(min_size=low, max_size=high or 80)
    return strategy.filter(lambda s: low <= len(s) <= (high or len(s)))


def _value(tp: Any, meta: typing.Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """A valid resource-form value of type `tp` under the field constraints `meta`."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return valid_section(tp)
    if origin is Literal:
        return st.sampled_from(typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        key = meta.get("map_key")
        return st.lists(_value(item, {}), max_size=min(meta.get("maxItems") or MAX_LIST, MAX_LIST),
                        unique_by=(lambda d: d[camel(key)]) if key else None)
    if origin is dict:
        return st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=MAX_LIST)
    if tp is bool:
        return st.booleans()
    low, high = meta.get("minimum"), meta.get("maximum")
    if tp is int:
        return st.integers(min_value=-INT64 if low is None else int(low), max_value=INT64 if high is None else int(high))
    if tp is float:
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if tp is str:
        return _string(meta)
    raise TypeError(f"no strategy for {tp!r}")


# Fields with constraints beyond the field's own (operator checks) that random draws would almost never satisfy.
OVERRIDES: dict[tuple[type, str], st.SearchStrategy[Any]] = {
    (EdgeGroup, "node_labels"): st.dictionaries(
        st.from_regex(LABEL_KEY, fullmatch=True).filter(lambda k: len(k.partition("/")[0]) <= 253 if "/" in k else True),
        st.from_regex(LABEL_VALUE, fullmatch=True), min_size=1, max_size=MAX_LIST,
    ),
}


def _satisfies_rules(cls: type, data: dict[str, Any]) -> bool:
    """The class's cross-field rules and its fields' own rules (schema.NOT_EMPTY, ...) hold."""
    if not rules_of(cls) and not any(f.metadata.get("rules") for f in dataclasses.fields(cls)):
        return True
    try:
        parse(cls, data, "spec")
    except InvalidSpec:
        return False
    return True


@functools.cache
def valid_section(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    """A valid resource-form dict for the spec dataclass `cls`; fields with defaults may be left out."""
    hints = typing.get_type_hints(cls)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        tp, _ = unwrap_optional(hints[f.name])
        strategy = OVERRIDES[(cls, f.name)] if (cls, f.name) in OVERRIDES else _value(tp, f.metadata)
        (optional if has_default(f) else required)[camel(f.name)] = strategy
    return st.fixed_dictionaries(required, optional=optional).filter(lambda d: _satisfies_rules(cls, d))


def valid_spec() -> st.SearchStrategy[dict[str, Any]]:
    return valid_section(Spec)


def resource(spec: Any, name: str = "glm", namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


# -------------------------------------------------------------------------------------------------
# Hostile specs


@dataclasses.dataclass(frozen=True)
class Place:
    """Where a mutation lands: the path of keys in the resource dict and what the schema says is there."""

    path: tuple[str | int, ...]
    tp: Any
    meta: typing.Mapping[str, Any]


def places(cls: type, data: dict[str, Any], path: tuple[str | int, ...] = ()) -> list[Place]:
    """Every field of `cls` (present or not) and, recursively, of the sections present in `data`."""
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        key = camel(f.name)
        tp, _ = unwrap_optional(hints[f.name])
        found.append(Place(path + (key,), tp, f.metadata))
        value = data.get(key)
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            found += places(tp, value, path + (key,))
        if typing.get_origin(tp) is list and isinstance(value, list):
            (item,) = typing.get_args(tp)
            if dataclasses.is_dataclass(item):
                for i, entry in enumerate(value):
                    found += places(item, entry, path + (key, i))
    return found


def _bad_values(place: Place, current: Any) -> st.SearchStrategy[Any]:
    """Values a field of this type must not take (or that probe its edges)."""
    tp, meta = place.tp, place.meta
    options = [JUNK, NASTY_STRINGS, st.just(_deeply_nested(40))]
    low, high = meta.get("minimum"), meta.get("maximum")
    if tp in (int, float):
        options.append(st.sampled_from([-1, -(2**63), 2**63, 2**64, 10**30, 1.5, -0.0, 1e308, "1", True]))
        if low is not None:
            options.append(st.sampled_from([low - 1, low - 0.5]))
        if high is not None:
            options.append(st.sampled_from([high + 1, high + 0.5, high * 1000]))
    if tp is str:
        limit = meta.get("maxLength")
        if limit:
            options.append(st.just("a" * (limit + 1)))
        options.append(st.text(min_size=1, max_size=30).map(lambda s: f"{current}{s}" if isinstance(current, str) else s))
    if typing.get_origin(tp) is Literal:
        options.append(st.sampled_from([v.upper() + " " for v in typing.get_args(tp) if v] + [None, 0]))
    if typing.get_origin(tp) is list:
        limit = meta.get("maxItems") or 16
        entry = current[0] if isinstance(current, list) and current else "x"
        options.append(st.just([entry] * (limit + 1)))
        options.append(st.just([entry, entry]))
    return st.one_of(options)


BAD_STEPS = st.lists(
    st.fixed_dictionaries({}, optional={"mirror": st.integers(-5, 205) | SCALARS, "weight": st.integers(-5, 205) | SCALARS,
                                        "pause": SCALARS}),
    max_size=25,
)


def _pick(draw: st.DrawFn, options: typing.Sequence[T]) -> T:
    """About uniform: hypothesis draws from a short range (or `sampled_from`) favour the first option,
    which would aim most mutations at `spec.model`."""
    return options[draw(st.integers(0, 2**32)) % len(options)]


MUTATIONS = ("value", "value", "value", "value", "unknown", "delete", "steps", "replicas", "labels", "flags")
# Flags the operator sets itself (engines.py refuses them in runtime.args and edge[].args).
OWN_FLAGS = st.sampled_from(["--port", "--port=9000", "--tensor-parallel-size=2", "--model", "--served-model-name=x"])


@st.composite
def mutated_spec(draw: st.DrawFn, kinds: tuple[str, ...] = MUTATIONS) -> dict[str, Any]:
    """A valid spec with one hostile change somewhere."""
    spec = json.loads(json.dumps(draw(valid_spec())))
    kind = _pick(draw, kinds)
    if kind == "steps":
        spec["rollout"] = {**(spec.get("rollout") or {}), "steps": draw(BAD_STEPS)}
        return spec
    if kind == "labels":
        labels = st.dictionaries(st.text(max_size=70) | NASTY_STRINGS, st.text(max_size=70) | NASTY_STRINGS, min_size=1, max_size=3)
        spec["edge"] = [{"name": "site", "nodeLabels": draw(labels)}]
        return spec
    if kind == "flags":
        spec["runtime"] = {**(spec.get("runtime") or {}), "args": ["--trust-remote-code", draw(OWN_FLAGS)]}
        return spec
    if kind == "replicas":
        numbers = st.integers(-3, 1003) | SCALARS
        spec["autoscaling"] = {**(spec.get("autoscaling") or {}), "minReplicas": draw(numbers), "maxReplicas": draw(numbers)}
        return spec
    place = _pick(draw, places(Spec, spec))
    parent = spec
    for step in place.path[:-1]:
        parent = parent.setdefault(step, {}) if isinstance(step, str) else parent[step]
    last = place.path[-1]
    if kind == "unknown":
        parent[draw(st.text(min_size=1, max_size=12).filter(lambda k: k != last))] = draw(JUNK)
    elif kind == "delete":
        parent.pop(last, None)
    else:
        parent[last] = draw(_bad_values(place, parent.get(last)))
    return spec


def names() -> st.SearchStrategy[str]:
    """Mostly valid resource names, sometimes ones the name rule refuses."""
    valid = st.from_regex(NAME, fullmatch=True).filter(NAME_RULE.check)
    return st.one_of(valid, valid, valid, st.sampled_from(["9glm", "Glm", "glm-", "a" * 53, "gl.m"]))


def operator_refused_spec() -> st.SearchStrategy[dict[str, Any]]:
    """Specs the API server accepts and only the operator can refuse (node labels, its own engine flags)."""
    return mutated_spec(kinds=("labels", "flags"))


def hostile_spec() -> st.SearchStrategy[dict[str, Any]]:
    """Valid and invalid specs, about half each."""
    return st.one_of(valid_spec(), mutated_spec())


# -------------------------------------------------------------------------------------------------
# Hostile Kafka records for the predictor (predictor/autoglm_predictor/pipeline/records.py)


NUMBERS = st.one_of(
    st.floats(), st.integers(), st.integers(min_value=10**300, max_value=10**400), st.just(-0.0),
    st.sampled_from([1e308, 10**400, -(10**400), -1, 0, 1e9, 2e9, True, None, "12", "NaN", [], {}]),
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
RECORD_FIELDS = ("v", "deployment", "ts", "step", "load", "requests_per_second", "queue_depth", "kv_cache_usage",
                 "ttft_p95_seconds", "ready_replicas")


def hostile_records(deployment: str, now: int) -> st.SearchStrategy[tuple[bytes | None, bytes | None]]:
    """(key, value) pairs for `deployment` around `now`: any bytes, near-valid records with hostile fields
    (NaN written as JSON's NaN, huge, negative, wrong types, wrong versions, other deployments), one bad
    number at a time, truncated JSON, and JSON nested thousands deep."""
    ts = now - now % 15
    deployments = st.one_of(st.just(deployment), st.from_regex(r"[a-z0-9]{1,5}/[a-z0-9]{1,5}", fullmatch=True),
                            st.text(max_size=80), st.just("ml/" + "a" * 64), st.just("../etc"), ANY_JSON)

    @st.composite
    def near_valid(draw: st.DrawFn) -> tuple[bytes | None, bytes]:
        data = {"v": 1, "deployment": deployment, "ts": ts, "step": draw(st.sampled_from([1, 15, 60]) | NUMBERS),
                "load": 1.0}
        for name in draw(st.lists(st.sampled_from(RECORD_FIELDS), max_size=4)):
            data[name] = draw(deployments if name == "deployment" else NUMBERS | ANY_JSON)
        text = json.dumps(data)
        if draw(st.booleans()):
            text = text[: draw(st.integers(0, len(text)))]  # truncated
        key = draw(st.one_of(st.none(), st.just(str(data["deployment"]).encode()), st.binary(max_size=90)))
        return key, text.encode()

    def one_bad_number(field: str, value: object) -> tuple[bytes, bytes]:
        data = {"v": 1, "deployment": deployment, "ts": ts, "step": 15, "load": 1.0, field: value}
        return deployment.encode(), json.dumps(data).encode()

    return st.one_of(
        st.tuples(st.none() | st.binary(max_size=40), st.none() | st.binary(max_size=200)),
        near_valid(),
        st.builds(one_bad_number, st.sampled_from(RECORD_FIELDS[2:]), NUMBERS),
        st.integers(1, 2048).map(lambda depth: (None, ("[" * depth + "]" * depth).encode())),
        st.integers(1, 512).map(lambda depth: (None, ('{"a":' * depth + "1" + "}" * depth).encode())),
    )
