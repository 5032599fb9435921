"""Quantities in the API server's canonical spelling: equal amounts, one string (issue 15, fault 8)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity

from autoglm_operator.api.quantity import canonical_quantity

# What kube-apiserver stores for each spelling (k8s.io/apimachinery resource.Quantity canonical form).
STORED = [
    ("1000m", "1"), ("1", "1"), ("0.5", "500m"), ("1.5", "1500m"), ("100m", "100m"), ("2000", "2k"), ("1500", "1500"),
    ("1k", "1k"), ("65536Mi", "64Gi"), ("64Gi", "64Gi"), ("8192Mi", "8Gi"), ("1.5Gi", "1536Mi"), ("1024", "1024"),
    ("1024Mi", "1Gi"), ("512", "512"), ("0", "0"), ("0Mi", "0"), ("1Ki", "1Ki"), ("0.5Ki", "512"),
]


@pytest.mark.parametrize("spelling, stored", STORED)
def test_canonical_form_is_what_the_api_server_stores(spelling, stored):
    assert canonical_quantity(spelling) == stored


def test_empty_means_unset():
    assert canonical_quantity("") == ""


AMOUNT_UNITS = [("", 1), ("k", 1000), ("M", 1000**2), ("G", 1000**3), ("Ki", 1024), ("Mi", 1024**2), ("Gi", 1024**3)]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(amount=st.integers(min_value=0, max_value=2**20), first=st.sampled_from(AMOUNT_UNITS),
       second=st.sampled_from(AMOUNT_UNITS))
def test_equal_amounts_have_one_canonical_spelling(amount, first, second):
    """The same number of bytes (or cores) written with any two suffixes that express it exactly (up to
    2**80, inside the 28 digits parse_quantity's Decimal keeps)."""
    value = amount * first[1] * second[1]
    a, b = f"{value // first[1]}{first[0]}", f"{value // second[1]}{second[0]}"
    if a[-1] == "i" and b[-1] != "i" or b[-1] == "i" and a[-1] != "i":
        # Binary and decimal suffixes keep their own format in Kubernetes too, but the amount is the same.
        assert parse_quantity(canonical_quantity(a)) == parse_quantity(canonical_quantity(b))
    else:
        assert canonical_quantity(a) == canonical_quantity(b)
    assert parse_quantity(canonical_quantity(a)) == value


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(millis=st.integers(min_value=1, max_value=10**9))
def test_cores_in_millis_and_decimals_agree(millis):
    decimal = f"{millis // 1000}.{millis % 1000:03d}"
    assert canonical_quantity(f"{millis}m") == canonical_quantity(decimal)
