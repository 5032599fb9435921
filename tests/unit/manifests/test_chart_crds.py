"""The chart's crds/ are copies of the repository's crds/ (helm warns "found symbolic link in path"
on every command for symlinks, so they are real files), written by `make crd`: they must not drift."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"
CHART_CRDS = REPO / "charts" / "autoglm-operator" / "crds"


def test_chart_crds_are_real_files_equal_to_crds() -> None:
    chart = sorted(p.name for p in CHART_CRDS.iterdir())
    assert chart == sorted(p.name for p in CRDS.glob("*.yaml") if p.name != "kustomization.yaml")
    for name in chart:
        assert not (CHART_CRDS / name).is_symlink(), f"{name}: a symlink (helm warns); copy it with `make crd`"
        assert (CHART_CRDS / name).read_bytes() == (CRDS / name).read_bytes(), \
            f"charts/autoglm-operator/crds/{name} differs from crds/{name}: run `make crd`"
