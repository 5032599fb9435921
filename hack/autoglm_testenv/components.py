"""Running the product's own processes against the local environment the way a cluster would:
each under the ServiceAccount and RBAC that the Helm chart gives it, so anything the chart forgot
shows up as a 403 here instead of in a user's cluster."""
from __future__ import annotations

import json
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
    env.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/autoglmdeployments.autoglm.io")


def chart_identities(env: Env, release: str, namespace: str, watch: list[str], directory: Path,
                     peering: bool = False) -> dict[str, Identity]:
    """Apply the chart's ServiceAccounts and RBAC (operator, collector, predictor) and return a
    kubeconfig per component that authenticates as its ServiceAccount. `peering` adds the
    operator's rights on kopf's peering objects (for several operator replicas)."""
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
        token = env.service_account_token(namespace, account)
        path.write_text(cluster.kubeconfig_yaml(env.server, env.ca_file, token, user=account, namespace=namespace))
        identities[component] = Identity(f"system:serviceaccount:{namespace}:{account}", path)
    return identities


def start_autoglm(name: str, args: list[str], identity: Identity, log_dir: Path, extra_env: dict[str, str] | None = None) -> int:
    """`autoglm ARGS` (the console script of this venv) as `identity`; returns the pid."""
    argv = [str(Path(sys.executable).parent / "autoglm"), *args]
    return procs.start(name, argv, log_dir, {"KUBECONFIG": str(identity.kubeconfig), **(extra_env or {})})
