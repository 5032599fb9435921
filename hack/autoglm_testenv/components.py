"""Running the product's own processes against the local environment the way a cluster would:
each under the ServiceAccount and RBAC that the Helm chart gives it, so anything the chart forgot
shows up as a 403 here instead of in a user's cluster."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from autoglm_testenv import cluster, config, procs
from autoglm_testenv.env import Env

CHART = config.REPO_DIR / "charts" / "autoglm-operator"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


@dataclass(frozen=True)
class Identity:
    user: str  # as the audit log names it
    kubeconfig: Path


def install_crds(env: Env) -> None:
    env.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(config.REPO_DIR / "crds"))
    env.wait_crds_established()


def chart_identities(env: Env, release: str, namespace: str, watch: list[str], directory: Path,
                     peering: bool = False, token_seconds: int = 3600) -> dict[str, Identity]:
    """Apply the chart's ServiceAccounts and RBAC (operator, collector, predictor) and return a
    kubeconfig per component that authenticates as its ServiceAccount for `token_seconds`.
    `peering` adds the operator's rights on kopf's peering objects (for several operator replicas).

    The objects are applied without Helm's ownership: a `helm install` of the same release name
    would refuse them, so each caller picks a release name of its own (the README's is `autoglm`)."""
    env.kubectl("create", "namespace", namespace, check=False)
    values = ["--set", "collector.enabled=true", "--set", "predictor.enabled=true",
              "--set", f"operator.peering.enabled={str(peering).lower()}"]
    if watch:
        values += ["--set", "operator.watchNamespaces={" + ",".join(watch) + "}"]
    rendered = env.helm("template", release, str(CHART), "-n", namespace, *values).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in RBAC_KINDS]
    env.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    identities = {}
    for doc in docs:
        if doc["kind"] != "ServiceAccount":
            continue
        account = doc["metadata"]["name"]
        component = account.rsplit("-", 1)[-1]
        path = directory / f"{component}.kubeconfig"
        token = env.service_account_token(namespace, account, token_seconds)
        path.write_text(cluster.kubeconfig_yaml(env.server, env.ca_file, token, user=account, namespace=namespace))
        identities[component] = Identity(f"system:serviceaccount:{namespace}:{account}", path)
    return identities


def autoglm_argv(args: list[str]) -> list[str]:
    """`autoglm ARGS` with the console script of this venv."""
    return [str(Path(sys.executable).parent / "autoglm"), *args]


def identity_environment(identity: Identity) -> dict[str, str]:
    """This process's environment, with the kubeconfig of `identity`."""
    return {**os.environ, "KUBECONFIG": str(identity.kubeconfig)}


def start_autoglm(name: str, args: list[str], identity: Identity, log_dir: Path, extra_env: dict[str, str] | None = None) -> int:
    """`autoglm ARGS` in the background as `identity`, its output in LOG_DIR/NAME.log; returns the pid."""
    return procs.start(name, autoglm_argv(args), log_dir, {"KUBECONFIG": str(identity.kubeconfig), **(extra_env or {})})
