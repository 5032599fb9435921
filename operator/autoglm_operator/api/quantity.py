"""Kubernetes quantities in the one spelling the API server stores, so equal amounts compare equal.

The API server stores `resource.Quantity` in its canonical form (k8s.io/apimachinery
pkg/api/resource quantity.go, `CanonicalizeBytes`): `1000m` is stored as `1`, `65536Mi` as `64Gi`,
`0.5` as `500m`. The revision hash and the rendered objects use that form too, so re-spelling an
amount neither makes a new revision (a model reload) nor a difference against what the server
stored. Parsing is the Kubernetes client's own `parse_quantity`; only the formatting rule is here.
"""
from __future__ import annotations

from decimal import Decimal

from kubernetes.utils import parse_quantity

# Decimal SI suffixes by power of ten (the exponents the API server writes, multiples of 3).
_DECIMAL_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIX = {0: "", 1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}
_NANO = Decimal("1e-9")


def canonical_quantity(text: str) -> str:
    """`text` as the API server would store it; "" stays "" (unset).

    The format follows the suffix written: a binary suffix (Ki, Mi, ...) stays binary when the
    amount is a whole number of at least 1024, everything else is decimal SI. Amounts below 1n are
    rounded up to 1n, as the API server does. Raises ValueError for text that is not a quantity.
    """
    if not text:
        return text
    value = parse_quantity(text)
    if value == 0:
        return "0"
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9:
        value = value.quantize(_NANO, rounding="ROUND_UP")
    binary = text.endswith("i") and abs(value) >= 1024 and value == value.to_integral_value()
    return _binary(int(value)) if binary else _decimal(value)


def _binary(amount: int) -> str:
    exponent = 0
    while amount % 1024 == 0 and exponent < max(_BINARY_SUFFIX):
        amount //= 1024
        exponent += 1
    return f"{amount}{_BINARY_SUFFIX[exponent]}"


def _decimal(value: Decimal) -> str:
    """Mantissa with every factor of ten moved into the exponent, then the exponent lowered to a multiple of 3."""
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)))
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    while exponent > max(_DECIMAL_SUFFIX):
        mantissa *= 1000
        exponent -= 3
    return f"{'-' if sign else ''}{mantissa}{_DECIMAL_SUFFIX[exponent]}"
