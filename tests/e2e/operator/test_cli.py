"""`autoglm rollout` against the real API server: a request it refuses is reported in the server's words."""
from __future__ import annotations

import os
import subprocess

import pytest

from autoglm_testenv import Env, components

pytestmark = pytest.mark.e2e


def test_rollout_on_a_missing_resource_says_it_is_not_found(testenv: Env, namespace: str, autoglm_crd: None) -> None:
    """It printed `404 Not Found`; the API server's Status message names the resource instead."""
    result = subprocess.run(components.autoglm_argv(["rollout", "status", "nope", "-n", namespace]),
                            env={**os.environ, "KUBECONFIG": str(testenv.kubeconfig)},
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 1
    assert result.stderr == f'autoglm rollout status: {namespace}/nope: autoglmdeployments.autoglm.io "nope" not found\n'
