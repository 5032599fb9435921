"""Hostile `AutoGLMDeployment` specs through the pure path (validate + render), with hypothesis.

Whatever the spec, `desired_objects` either raises InvalidSpec with a reason or renders objects
that fit the real upstream CRD schemas; no other exception, for every capability combination
and whatever junk the predictor left in status.forecast. The generated CRD agrees with the
parser: whatever the parser accepts, the CRD's structural schema accepts too.
"""
from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schema_support import body, load_upstream_schemas, structural_errors, without_nulls
from strategies import JUNK, hostile_spec, names, resource, valid_spec

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.crd import build_crd
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.api.spec import parse_instance
from autoglm_operator.reconcile.apply import apply_body
from autoglm_operator.render.desired import render, validate

# derandomize: the same examples on every run (CI is reproducible); database=None: nothing written.
HOSTILE = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
CAPABILITIES = st.builds(Capabilities, keda=st.booleans(), istio=st.booleans(), kubeedge=st.booleans())
FORECASTS = st.one_of(
    st.none(), JUNK,
    st.fixed_dictionaries({"predicted": JUNK, "floor": JUNK, "horizonSeconds": JUNK, "generatedAt": JUNK,
                           "quantile": JUNK}),
)
OWN_SCHEMA = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _render_or_refuse(cr: dict[str, Any], capabilities: Capabilities, forecast: Any) -> list[dict[str, Any]] | None:
    """The objects, or None when refused with a reason; any other exception fails the test."""
    try:
        return render(validate(cr, capabilities), capabilities, forecast=forecast)
    except InvalidSpec as exc:
        assert str(exc).strip(), "InvalidSpec without a reason"
        return None


def _fits_upstream(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        schema = load_upstream_schemas().get((obj["apiVersion"], obj["kind"]))
        if schema is not None:
            assert structural_errors(body(obj), {**schema, "required": []}) == [], obj["kind"]


def _no_bad_numbers(value: Any) -> None:
    """No NaN, infinity or negative count anywhere in what would be applied."""
    if isinstance(value, dict):
        for item in value.values():
            _no_bad_numbers(item)
    elif isinstance(value, list):
        for item in value:
            _no_bad_numbers(item)
    elif isinstance(value, float):
        assert math.isfinite(value)


@HOSTILE
@given(spec=hostile_spec(), name=names(), capabilities=CAPABILITIES, forecast=FORECASTS)
def test_hostile_specs_are_refused_with_a_reason_or_render_valid_objects(spec, name, capabilities, forecast):
    objects = _render_or_refuse(resource(spec, name, "ml"), capabilities, forecast)
    if objects is not None:
        _fits_upstream(objects)
        _no_bad_numbers(objects)
        scaler = next((o for o in objects if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")), None)
        if scaler:
            low = scaler["spec"].get("minReplicaCount", scaler["spec"].get("minReplicas", 0))
            high = scaler["spec"].get("maxReplicaCount", scaler["spec"].get("maxReplicas"))
            assert 0 <= low <= high
            for trigger in scaler["spec"].get("triggers", []):
                assert 0 < float(trigger["metadata"]["threshold"]) < math.inf


@HOSTILE
@given(spec=valid_spec())
def test_generated_valid_specs_parse_and_fit_the_crd(spec):
    parse_instance(resource(spec))
    assert structural_errors(body(resource(spec)), OWN_SCHEMA) == []


@HOSTILE
@given(spec=hostile_spec())
def test_what_the_parser_accepts_the_crd_schema_accepts(spec):
    cr = resource(spec)
    try:
        parse_instance(cr)
    except InvalidSpec:
        return
    assert structural_errors(without_nulls(body(cr)), OWN_SCHEMA) == []


@pytest.mark.parametrize("value, reason", [
    (float("nan"), "finite"), (float("inf"), "finite"), (10**400, "64-bit"), (-(10**30), "64-bit"),
])
def test_yaml_only_numbers_are_refused(make_cr, value, reason):
    """JSON through the API server cannot carry these, but `autoglm render` reads YAML (.nan, .inf)."""
    field = {"autoscaling": {"target": {"perReplica": value}}} if isinstance(value, float) else {"runtime": {"maxModelLen": value}}
    with pytest.raises(InvalidSpec, match=reason):
        parse_instance(make_cr(**field))


def test_non_string_keys_are_reported_not_crashed_on(make_cr):
    with pytest.raises(InvalidSpec, match="unknown field"):
        parse_instance({**make_cr(), "spec": {**make_cr()["spec"], 1: "x", "zz": 2}})


def test_a_trailing_newline_does_not_pass_a_pattern(make_cr):
    """Go's `$` (the API server's) is the end of the text; Python's also matches before a final newline."""
    with pytest.raises(InvalidSpec, match="does not match"):
        parse_instance(make_cr(runtime={"env": [{"name": "FOO\n", "value": "x"}]}))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=st.text() | st.sampled_from(["\U0001f600", "\\ud83d\\ude00", "\\\U0001f600", "\x85\u2028\x00\x9f"]))
def test_apply_bodies_carry_any_string_through_yaml(text):
    """The API server parses apply patches as YAML; JSON's surrogate-pair escapes break that parser."""
    assert yaml.safe_load(apply_body({"spec": {"args": [text]}})) == {"spec": {"args": [text]}}
