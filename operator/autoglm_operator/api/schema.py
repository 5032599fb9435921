"""Typed dataclasses that are both the parser and the OpenAPI schema of the custom resource.

The CRD schema is generated from the same dataclasses that parse a resource, so the API server
and the operator can never disagree about a field name, a default or a range. Field names are
snake_case in Python and camelCase in the resource (`tensor_parallel_size` <-> `tensorParallelSize`).
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Literal, TypeVar

T = TypeVar("T")

INT64 = 2**63 - 1  # the API server stores integers as int64


class InvalidSpec(ValueError):
    """A resource the operator refuses; the message names the field so a user can fix it."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """A rule: one CEL expression for the API server and one Python twin.

    Both sides share the message, so `kubectl apply` and `autoglm render` report the same words.
    A cross-field rule sits in a dataclass's `RULES` and `check` receives the parsed dataclass; a
    field rule is passed to `spec_field(rules=...)` and `check` receives the field's parsed value.
    A transition rule (`TRANSITION_RULES`, CEL with `oldSelf`) has only the API server as judge,
    because only it sees the previous object; its `check` receives `(old, new)` dataclasses.
    """

    cel: str
    message: str
    check: typing.Callable[[Any], bool]


# Required strings that may not be empty: `vllm serve ""` or an empty Istio host is never what was
# meant, and an empty value often comes from an unset template variable. `size()` costs the API
# server a constant, so the rule fits the CRD's CEL cost budget on every string and list of strings.
NOT_EMPTY = Rule(cel="self.size() > 0", message="must not be empty", check=lambda value: len(value) > 0)
NO_EMPTY_ITEM = Rule(
    cel="self.all(item, item.size() > 0)", message="must not contain an empty string", check=lambda items: all(items)
)


def exactly_one(what: str, *fields: str) -> Rule:
    """A cross-field rule: exactly one of the optional (None-default) `fields` is set, as Kubernetes'
    one-of sources (an env `valueFrom`, a volume) require; `what` names the object in the message."""
    names = [camel(f) for f in fields]
    return Rule(
        cel=" + ".join(f"(has(self.{n}) ? 1 : 0)" for n in names) + " == 1",
        message=f"{what} sets exactly one of {', '.join(names[:-1])} and {names[-1]}",
        check=lambda obj: sum(getattr(obj, f) is not None for f in fields) == 1,
    )


def spec_field(
    description: str,
    *,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    minimum: float | None = None,
    maximum: float | None = None,
    pattern: str | None = None,
    format: str | None = None,
    max_length: int | None = None,
    max_items: int | None = None,
    map_key: str | None = None,
    rules: tuple[Rule, ...] = (),
    item_pattern: str | None = None,
    item_max_length: int | None = None,
    list_set: bool = False,
    canonical: typing.Callable[[Any], Any] | None = None,
) -> Any:
    """A dataclass field that also carries its OpenAPI constraints and `kubectl explain` text.

    `map_key` makes a list a `x-kubernetes-list-type: map` keyed by that field: the API server
    then rejects duplicate keys and server-side apply merges the list entry by entry. On a map
    (`dict`) field `max_items` bounds its entries (`maxProperties`). `rules` are field rules
    (CEL on the field, `self` its value), such as NOT_EMPTY. `item_pattern` and `item_max_length`
    constrain each string of a list (OpenAPI on the items: no CEL cost), `list_set` makes a list of
    strings an `x-kubernetes-list-type: set` (the API server refuses duplicates). `canonical` maps a
    value to the one spelling the API server treats as equal (a quantity's canonical form): the
    revision hashes that, so re-spelling a value does not make a new revision.
    """
    meta = {
        "description": description,
        "minimum": minimum,
        "maximum": maximum,
        "pattern": pattern,
        "format": format,
        "maxLength": max_length,
        "maxItems": max_items,
        "map_key": map_key,
        "rules": rules,
        "item_pattern": item_pattern,
        "item_max_length": item_max_length,
        "list_set": list_set,
        "canonical": canonical,
    }
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(T, True) for `T | None`, else (tp, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def rules_of(cls: type) -> tuple[Rule, ...]:
    """Cross-field rules live on the dataclass as a `RULES` class variable (not a field)."""
    return getattr(cls, "RULES", ())


def transition_rules_of(cls: type) -> tuple[Rule, ...]:
    """Rules comparing an update with the stored object (`TRANSITION_RULES`): CEL only, see Rule."""
    return getattr(cls, "TRANSITION_RULES", ())


def has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


# ---------------------------------------------------------------------------------------------
# OpenAPI generation


def openapi_schema(cls: type) -> dict[str, Any]:
    """The structural schema of a dataclass; its `RULES` become CEL `x-kubernetes-validations`."""
    hints = _hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        tp, optional = unwrap_optional(hints[f.name])
        prop = _type_schema(tp, f.metadata.get("map_key"))
        prop["description"] = f.metadata["description"]
        for key in ("minimum", "maximum", "pattern", "format", "maxLength", "maxItems"):
            if f.metadata.get(key) is not None:
                prop["maxProperties" if key == "maxItems" and prop["type"] == "object" else key] = f.metadata[key]
        if f.metadata.get("item_pattern") is not None:
            prop["items"]["pattern"] = f.metadata["item_pattern"]
        if f.metadata.get("item_max_length") is not None:
            prop["items"]["maxLength"] = f.metadata["item_max_length"]
        if f.metadata.get("list_set"):
            prop["x-kubernetes-list-type"] = "set"
        if f.metadata.get("rules"):
            prop["x-kubernetes-validations"] = [{"rule": r.cel, "message": r.message} for r in f.metadata["rules"]]
        if f.default is not dataclasses.MISSING and f.default is not None:
            prop["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(tp):
            # Spelled out in full, not `{}`: the API server checks CEL rules against the default
            # itself, before nested defaults apply, and `{}` has no minReplicas to compare.
            prop["default"] = resource_form(f.default_factory())
        if not has_default(f) and not optional:
            required.append(camel(f.name))
        properties[camel(f.name)] = dict(sorted(prop.items()))
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    if required:
        schema["required"] = required
    rules = rules_of(cls) + transition_rules_of(cls)
    if rules:
        schema["x-kubernetes-validations"] = [{"rule": r.cel, "message": r.message} for r in rules]
    return schema


def _type_schema(tp: Any, map_key: str | None) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return openapi_schema(tp)
    if origin is Literal:
        return {"type": "string", "enum": list(typing.get_args(tp))}
    if origin is list:
        (item,) = typing.get_args(tp)
        schema: dict[str, Any] = {"type": "array", "items": _type_schema(item, None)}
        if map_key:
            schema["x-kubernetes-list-type"] = "map"
            schema["x-kubernetes-list-map-keys"] = [map_key]
        return schema
    if origin is dict:
        _, value = typing.get_args(tp)
        return {"type": "object", "additionalProperties": _type_schema(value, None)}
    scalar = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if tp in scalar:
        return {"type": scalar[tp]}
    raise TypeError(f"unsupported field type {tp!r}")


def resource_form(value: Any) -> Any:
    """A parsed value as it appears in a resource: camelCase keys, unset (None) fields left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            camel(f.name): resource_form(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, list):
        return [resource_form(v) for v in value]
    if isinstance(value, dict):
        return {k: resource_form(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# Parsing


def parse(cls: type[T], data: Any, path: str) -> T:
    """Build `cls` from a resource dict, applying the schema's defaults and checks.

    The API server already enforces the schema, but `autoglm render` runs without one and an
    operator may meet objects stored under an older CRD, so the checks are repeated here. Like the
    API server, every field's errors are reported, not the first: InvalidSpec's message is one line
    per error. The cross-field rules of an object run only once all its fields are valid (they
    compare parsed values).
    """
    if not isinstance(data, dict):
        raise InvalidSpec(f"{path}: expected an object, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {camel(f.name): f for f in dataclasses.fields(cls)}
    errors: list[str] = []
    unknown = sorted(str(key)[:40] for key in set(data) - set(fields))
    if unknown:
        errors.append(f"{path}: unknown field(s) {', '.join(unknown[:5])}")
    values: dict[str, Any] = {}
    for key, f in fields.items():
        tp, optional = unwrap_optional(hints[f.name])
        # The API server prunes a null like an absent field (then defaults it), so the parser does too.
        if data.get(key) is None:
            if not has_default(f) and not optional:
                errors.append(f"{path}.{key}: required")
            continue
        try:
            value = _parse_value(tp, data[key], f"{path}.{key}")
            _check_constraints(value, f.metadata, f"{path}.{key}")
            for rule in f.metadata.get("rules") or ():
                if not rule.check(value):
                    raise InvalidSpec(f"{path}.{key}: {rule.message}")
        except InvalidSpec as err:
            errors += str(err).splitlines()
            continue
        values[f.name] = value
    if errors:
        raise InvalidSpec("\n".join(errors))
    obj = cls(**values)
    failed = [f"{path}: {rule.message}" for rule in rules_of(cls) if not rule.check(obj)]
    if failed:
        raise InvalidSpec("\n".join(failed))
    return obj


def _parse_value(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, path)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise InvalidSpec(f"{path}: must be one of {', '.join(map(str, allowed))}, got {_short(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise InvalidSpec(f"{path}: expected a list")
        (item,) = typing.get_args(tp)
        return [_parse_value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise InvalidSpec(f"{path}: expected an object")
        _, item = typing.get_args(tp)
        return {str(k): _parse_value(item, v, f"{path}.{str(k)[:40]}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool) and abs(value) <= INT64:
        value = float(value)
    # JSON has one number type: the API server takes 2.0 as the integer 2 (within float precision).
    if tp is int and isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        value = int(value)
    if tp in (str, int, float, bool) and (type(value) is not tp):
        raise InvalidSpec(f"{path}: expected {tp.__name__}, got {_short(value)}")
    # YAML (`autoglm render`) can say .nan, .inf or 10**30; JSON through the API server cannot.
    if tp is float and not math.isfinite(value):
        raise InvalidSpec(f"{path}: expected a finite number, got {value!r}")
    if tp is int and abs(value) > INT64:
        raise InvalidSpec(f"{path}: {_short(value)} does not fit a 64-bit integer")
    return value


def _short(value: Any) -> str:
    """A bounded repr for messages: hostile values may be megabytes long."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def matches(pattern: str, value: str) -> bool:
    """`pattern` as the API server applies it (Go regexp): `$` is the end of the text, where
    Python's also matches before a final newline (so `"FOO\\n"` would pass `^[A-Z]+$`)."""
    return re.search(_GO_END.sub(r"\\Z", pattern), value) is not None


_GO_END = re.compile(r"(?<!\\)\$(?=$|[|)])")  # an anchor `$`: at the end or before `|` or `)`


def _attribute(item: Any, key: str) -> str:
    """The Python attribute of a resource-form (camelCase) key of a parsed dataclass."""
    return next(f.name for f in dataclasses.fields(item) if camel(f.name) == key)


def _check_constraints(value: Any, meta: typing.Mapping[str, Any], path: str) -> None:
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise InvalidSpec(f"{path}: must be >= {meta['minimum']}, got {value}")
    if meta.get("maximum") is not None and value > meta["maximum"]:
        raise InvalidSpec(f"{path}: must be <= {meta['maximum']}, got {value}")
    if meta.get("pattern") is not None and not matches(meta["pattern"], value):
        raise InvalidSpec(f"{path}: {_short(value)} does not match {meta['pattern']}")
    if meta.get("maxLength") is not None and len(value) > meta["maxLength"]:
        raise InvalidSpec(f"{path}: longer than {meta['maxLength']} characters")
    if meta.get("maxItems") is not None and len(value) > meta["maxItems"]:
        raise InvalidSpec(f"{path}: more than {meta['maxItems']} entries")
    for i, item in enumerate(value if meta.get("item_pattern") or meta.get("item_max_length") else ()):
        if meta.get("item_max_length") is not None and len(item) > meta["item_max_length"]:
            raise InvalidSpec(f"{path}[{i}]: longer than {meta['item_max_length']} characters")
        if meta.get("item_pattern") is not None and not matches(meta["item_pattern"], item):
            raise InvalidSpec(f"{path}[{i}]: {_short(item)} does not match {meta['item_pattern']}")
    if meta.get("list_set"):
        dupes = sorted({item for item in value if value.count(item) > 1})
        if dupes:
            raise InvalidSpec(f"{path}: duplicate entries {', '.join(map(_short, dupes))}")
    key = meta.get("map_key")
    if key is not None:
        seen = [getattr(item, _attribute(item, key)) for item in value]
        dupes = sorted({k for k in seen if seen.count(k) > 1})
        if dupes:
            raise InvalidSpec(f"{path}: duplicate {key} {', '.join(dupes)}")
