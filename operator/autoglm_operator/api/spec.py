"""The `AutoGLMDeployment` spec: one typed model that parses resources and generates the CRD.

Rules the API server can check are `RULES` (CEL in the CRD, the same check in Python). Rules that
depend on what is installed in the cluster are in `check_capabilities`, because only the operator
knows that.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar, Literal

from autoglm_operator.api.capabilities import MissingCapability
from autoglm_operator.api.istio_rules import HOST, HOST_MAX_LENGTH, RETRY_ON, retry_on_ok
from autoglm_operator.api.quantity import canonical_quantity
from autoglm_operator.api.rollout_spec import Rollout
from autoglm_operator.api.schema import (
    NO_EMPTY_ITEM,
    NOT_EMPTY,
    InvalidSpec,
    Rule,
    exactly_one,
    matches,
    parse,
    spec_field,
)

GROUP = "autoglm.io"
VERSION = "v1alpha1"
KIND = "AutoGLMDeployment"
PLURAL = "autoglmdeployments"

Engine = Literal["vllm", "sglang", "tgi"]
Quantization = Literal["none", "awq", "gptq", "fp8"]

PVC_SOURCE = r"^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/.*)?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Kubernetes label syntax, which node selectors and affinities must follow: a key is a name with
# an optional DNS-subdomain prefix (at most 253 characters, checked apart: RE2 has no lookahead).
# Checked by the operator (check_labels): as CEL over map keys inside spec.edge[] it would exceed
# the API server's cost budget for the CRD by 100 times.
_DNS_PART = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
LABEL_KEY = rf"^({_DNS_PART}(\.{_DNS_PART})*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{{0,61}}[A-Za-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# What the API server's CEL url() (Istio's jwksUri rule) can parse: a plain host, an optional
# port, then printable ASCII without spaces, quotes or broken %-escapes.
HTTP_URL = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?]([!#$&-~]|%[0-9A-Fa-f]{2})*)?$"
# An image reference without whitespace (the API server refuses images with surrounding spaces).
IMAGE = r"^[A-Za-z0-9][-A-Za-z0-9._/:@]*$"
# Names of Secrets, ConfigMaps and claims (DNS subdomains), keys in them, and environment variables.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Istio's `<namespace>/<name>` gateway reference: two DNS labels (istio pkg/config/validation validateGatewayNames).
GATEWAY = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

# What the operator itself puts into every engine pod (render/workload.py builds the pod from these).
# A user entry with the same key would be a duplicate key the API server refuses at apply time, or
# silently replace the operator's own: both are refused at validation, naming the entry.
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
EDGE_NODE_LABEL = "node-role.kubernetes.io/edge"
CACHE_DIR = "/cache"
SHM_DIR = "/dev/shm"
WEIGHTS_DIR = "/models"  # = api.engines.MODEL_DIR (engines imports this module; a unit test keeps them equal)
OPERATOR_ENV = ("HOME", "HF_HOME")
OPERATOR_VOLUMES = ("dshm", "cache")
WEIGHTS_VOLUME_PREFIX = "weights-"  # weights-0, weights-1, ...: one per pvc:// claim
OPERATOR_MOUNTS = (SHM_DIR, CACHE_DIR, WEIGHTS_DIR)
OPERATOR_NODE_LABELS = (EDGE_NODE_LABEL, GPU_PRODUCT_LABEL)


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


NO_OPERATOR_ENV = Rule(
    cel=f"self.all(e, !(e.name in {_cel_list(OPERATOR_ENV)}))",
    message=f"{', '.join(OPERATOR_ENV)} are set by the operator (the engine's cache under {CACHE_DIR}); "
            "use another name or a volume",
    check=lambda env: not any(e.name in OPERATOR_ENV for e in env),
)

# `<name>-<10 hex>` must stay a DNS label (63), and Service names must start with a letter.
NAME_RULE = Rule(
    cel="self.metadata.name.size() <= 52 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    message="metadata.name must be a DNS label of at most 52 characters starting with a letter",
    check=lambda name: len(name) <= 52 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) is not None,
)


def _without_final_slash(source: str) -> str:
    """pvc://claim/path/ mounts and loads exactly what pvc://claim/path does (render.workload strips it)."""
    return source.rstrip("/")


@dataclasses.dataclass(frozen=True)
class LoraAdapter:
    """A LoRA adapter loaded at start-up and served under its own model name."""

    name: str = spec_field("Model name clients pass to select this adapter.", pattern=DNS_LABEL, max_length=63)
    source: str = spec_field("Where the adapter weights are: pvc://<claim>/<path>.", pattern=PVC_SOURCE,
                             canonical=_without_final_slash)


@dataclasses.dataclass(frozen=True)
class Model:
    """The model to serve. Every field here changes the pods and so makes a new revision."""

    name: str = spec_field("Hugging Face model id, also the model name clients request (e.g. zai-org/GLM-4-9B).",
                           max_length=253, rules=(NOT_EMPTY,))
    revision: str = spec_field("Hub revision (branch, tag or commit) used when weights are downloaded.", default="main",
                               rules=(NOT_EMPTY,))
    source: str = spec_field(
        "Pre-downloaded weights as pvc://<claim>/<path>; empty downloads `name` from the Hub at start-up.",
        default="",
        pattern=r"^$|" + PVC_SOURCE,
        canonical=_without_final_slash,
    )
    quantization: Quantization = spec_field("Weight quantization the engine applies when loading.", default="none")
    lora_adapters: list[LoraAdapter] = spec_field(
        "LoRA adapters served next to the base model.", default_factory=list, max_items=16, map_key="name"
    )


@dataclasses.dataclass(frozen=True)
class KeyRef:
    """One key of a Secret or ConfigMap in the resource's namespace."""

    name: str = spec_field("Secret or ConfigMap name.", pattern=DNS_SUBDOMAIN, max_length=253)
    key: str = spec_field("Key in it.", pattern=CONFIG_KEY, max_length=253)
    optional: bool = spec_field("Start the pod even when the object or key is missing.", default=False)


@dataclasses.dataclass(frozen=True)
class EnvSource:
    """Where a variable's value comes from instead of `value`: a Secret or a ConfigMap key."""

    RULES: ClassVar[tuple[Rule, ...]] = (exactly_one("valueFrom", "secret_key_ref", "config_map_key_ref"),)

    secret_key_ref: KeyRef | None = spec_field("A Secret key (e.g. a Hub token), never stored in this resource.", default=None)
    config_map_key_ref: KeyRef | None = spec_field("A ConfigMap key.", default=None)


@dataclasses.dataclass(frozen=True)
class EnvVar:
    """An extra environment variable for the engine container: a value, or a Secret or ConfigMap key."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.valueFrom) || size(self.value) == 0",
            message="an env entry sets value or valueFrom, not both",
            check=lambda e: e.value_from is None or not e.value,
        ),
    )

    name: str = spec_field("Variable name.", pattern=ENV_NAME, max_length=256)
    value: str = spec_field("Variable value.", default="")
    value_from: EnvSource | None = spec_field("Take the value from a Secret or ConfigMap key.", default=None)


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    """A Secret or ConfigMap in the resource's namespace."""

    name: str = spec_field("Object name.", pattern=DNS_SUBDOMAIN, max_length=253)
    optional: bool = spec_field("Start the pod even when it is missing.", default=False)


@dataclasses.dataclass(frozen=True)
class EnvFrom:
    """Every key of a Secret or ConfigMap as environment variables (Kubernetes `envFrom`)."""

    RULES: ClassVar[tuple[Rule, ...]] = (exactly_one("envFrom", "secret_ref", "config_map_ref"),)

    secret_ref: ObjectRef | None = spec_field("A Secret.", default=None)
    config_map_ref: ObjectRef | None = spec_field("A ConfigMap.", default=None)
    prefix: str = spec_field("Prefix added to every variable name.", default="", pattern=r"^$|" + ENV_NAME, max_length=64)


@dataclasses.dataclass(frozen=True)
class SecretVolume:
    """A Secret as files."""

    secret_name: str = spec_field("Secret name.", pattern=DNS_SUBDOMAIN, max_length=253)
    optional: bool = spec_field("Start the pod even when the Secret is missing.", default=False)


@dataclasses.dataclass(frozen=True)
class ConfigMapVolume:
    """A ConfigMap as files."""

    name: str = spec_field("ConfigMap name.", pattern=DNS_SUBDOMAIN, max_length=253)
    optional: bool = spec_field("Start the pod even when the ConfigMap is missing.", default=False)


@dataclasses.dataclass(frozen=True)
class ClaimVolume:
    """A PersistentVolumeClaim in the resource's namespace."""

    claim_name: str = spec_field("Claim name.", pattern=DNS_SUBDOMAIN, max_length=253)
    read_only: bool = spec_field("Mount read-only.", default=False)


@dataclasses.dataclass(frozen=True)
class EmptyDirVolume:
    """Scratch space that lives as long as the pod."""

    medium: Literal["", "Memory"] = spec_field("Empty: the node's disk; Memory: tmpfs (counts as the pod's memory).",
                                               default="")
    size_limit: str = spec_field("Largest size; empty leaves it unbounded.", default="", pattern=r"^$|" + QUANTITY,
                                 canonical=canonical_quantity)


@dataclasses.dataclass(frozen=True)
class Volume:
    """An extra pod volume; mount it with runtime.volumeMounts."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        exactly_one("a volume", "secret", "config_map", "persistent_volume_claim", "empty_dir"),
    )

    name: str = spec_field("Volume name, unique in the pod.", pattern=DNS_LABEL, max_length=63)
    secret: SecretVolume | None = spec_field("A Secret as files.", default=None)
    config_map: ConfigMapVolume | None = spec_field("A ConfigMap as files.", default=None)
    persistent_volume_claim: ClaimVolume | None = spec_field("A PersistentVolumeClaim.", default=None)
    empty_dir: EmptyDirVolume | None = spec_field("Scratch space for the pod's lifetime.", default=None)


@dataclasses.dataclass(frozen=True)
class VolumeMount:
    """Where a volume of runtime.volumes appears in the engine container."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel=f"!{_cel_list(OPERATOR_MOUNTS)}.exists(p, self.mountPath == p || self.mountPath.startsWith(p + '/'))",
            message=f"volumeMounts[].mountPath may not be, or be inside, a path the operator mounts "
                    f"({', '.join(OPERATOR_MOUNTS)})",
            check=lambda m: not any(m.mount_path == p or m.mount_path.startswith(p + "/") for p in OPERATOR_MOUNTS),
        ),
    )

    name: str = spec_field("Name of a volume in runtime.volumes.", pattern=DNS_LABEL, max_length=63)
    mount_path: str = spec_field("Absolute path in the container, unique in it.", pattern=r"^/[-A-Za-z0-9_./]*$",
                                 max_length=256)
    read_only: bool = spec_field("Mount read-only.", default=False)
    sub_path: str = spec_field("Path inside the volume to mount instead of its root.", default="",
                               pattern=r"^$|^[-A-Za-z0-9_][-A-Za-z0-9_./]*$", max_length=256,
                               rules=(Rule(cel="!self.contains('..')", message="must not contain '..'",
                                           check=lambda p: ".." not in p),))


@dataclasses.dataclass(frozen=True)
class PullSecret:
    """A Secret of type kubernetes.io/dockerconfigjson in the resource's namespace."""

    name: str = spec_field("Secret name.", pattern=DNS_SUBDOMAIN, max_length=253)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """The inference engine and how it is started."""

    engine: Engine = spec_field("Inference engine.", default="vllm")
    image: str = spec_field(
        "Container image; empty uses the operator's pinned image for the engine.", default="", pattern=r"^$|" + IMAGE
    )
    tensor_parallel_size: int = spec_field("GPUs one model copy is split across.", default=1, minimum=1, maximum=16)
    max_model_len: int = spec_field("Maximum context length in tokens; 0 keeps the model's own.", default=0, minimum=0)
    args: list[str] = spec_field(
        "Extra engine flags appended to the generated ones; flags the operator sets are refused.",
        default_factory=list,
        max_items=64,
        rules=(NO_EMPTY_ITEM,),
    )
    env: list[EnvVar] = spec_field(
        "Extra environment variables, after the operator's own (HOME, HF_HOME: refused here).",
        default_factory=list, max_items=64, map_key="name", rules=(NO_OPERATOR_ENV,),
    )
    env_from: list[EnvFrom] = spec_field(
        "Secrets and ConfigMaps whose keys become variables; a variable in env (or the operator's) wins over them.",
        default_factory=list, max_items=16,
    )
    volumes: list[Volume] = spec_field(
        "Extra pod volumes (names dshm, cache and weights-* are the operator's).",
        default_factory=list, max_items=16, map_key="name",
        rules=(Rule(
            cel=f"self.all(v, !(v.name in {_cel_list(OPERATOR_VOLUMES)}) && !v.name.startsWith('{WEIGHTS_VOLUME_PREFIX}'))",
            message=f"volume names {', '.join(OPERATOR_VOLUMES)} and {WEIGHTS_VOLUME_PREFIX}* are the operator's; "
                    "use another name",
            check=lambda vs: not any(v.name in OPERATOR_VOLUMES or v.name.startswith(WEIGHTS_VOLUME_PREFIX) for v in vs),
        ),),
    )
    volume_mounts: list[VolumeMount] = spec_field(
        "Where runtime.volumes appear in the engine container.", default_factory=list, max_items=16, map_key="mountPath",
    )
    image_pull_secrets: list[PullSecret] = spec_field(
        "Secrets to pull the image (and edge images) from a private registry.",
        default_factory=list, max_items=8, map_key="name",
    )
    startup_timeout_seconds: int = spec_field(
        "How long weight loading may take before the pod is restarted (startup probe budget).",
        default=1800,
        minimum=60,
        maximum=7200,
    )
    drain_seconds: int | None = spec_field(
        "Longest a stopping pod waits, after leaving the endpoints, until its engine reports no running or queued "
        "request (its preStop hook); unset: traffic.timeoutSeconds, the longest a stream lasts; 0: no wait.",
        default=None,
        minimum=0,
        maximum=86400,
    )

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name))",
            message="every runtime.volumeMounts[].name must be a volume of runtime.volumes",
            check=lambda r: {m.name for m in r.volume_mounts} <= {v.name for v in r.volumes},
        ),
    )


@dataclasses.dataclass(frozen=True)
class Gpu:
    """GPUs per pod."""

    count: int = spec_field("nvidia.com/gpu per pod.", default=1, minimum=1, maximum=16)
    product: str = spec_field(
        "Required value of the node label nvidia.com/gpu.product (e.g. NVIDIA-H100-80GB-HBM3); empty accepts any.",
        default="",
        pattern=LABEL_VALUE,
    )


@dataclasses.dataclass(frozen=True)
class Resources:
    """Compute per pod."""

    gpu: Gpu = spec_field("GPUs per pod.", default_factory=Gpu)
    cpu: str = spec_field("CPU request and limit; empty leaves it unset.", default="", pattern=r"^$|" + QUANTITY,
                     canonical=canonical_quantity)
    memory: str = spec_field("Memory request and limit; empty leaves it unset.", default="", pattern=r"^$|" + QUANTITY,
                        canonical=canonical_quantity)
    shm_size: str = spec_field("Size of the /dev/shm memory volume engines use between workers.", default="8Gi",
                          pattern=QUANTITY, canonical=canonical_quantity)


# A label key as the API server's pattern sees it (the prefix length is checked apart, see check_labels).
LABEL_KEY_MAX = 253 + 1 + 63


@dataclasses.dataclass(frozen=True)
class Toleration:
    """Lets the pods onto nodes with a matching taint (Kubernetes `tolerations[]`)."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(cel="self.key != '' || self.operator == 'Exists'",
             message="a toleration without a key must use operator Exists (it then tolerates every taint)",
             check=lambda t: bool(t.key) or t.operator == "Exists"),
        Rule(cel="self.operator != 'Exists' || self.value == ''",
             message="a toleration with operator Exists takes no value",
             check=lambda t: t.operator != "Exists" or not t.value),
        Rule(cel="!has(self.tolerationSeconds) || self.effect == 'NoExecute'",
             message="tolerationSeconds needs effect NoExecute",
             check=lambda t: t.toleration_seconds is None or t.effect == "NoExecute"),
    )

    key: str = spec_field("Taint key; empty (with operator Exists) matches every key.", default="",
                          pattern=r"^$|" + LABEL_KEY, max_length=LABEL_KEY_MAX)
    operator: Literal["Equal", "Exists"] = spec_field("Equal compares the value; Exists matches any value.", default="Equal")
    value: str = spec_field("Taint value (operator Equal).", default="", pattern=LABEL_VALUE)
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = spec_field(
        "Taint effect to tolerate; empty matches every effect.", default="")
    toleration_seconds: int | None = spec_field(
        "With NoExecute: how long the pod stays once the taint appears (0 or less: evicted at once); unset: for ever.",
        default=None)


@dataclasses.dataclass(frozen=True)
class NodeRequirement:
    """One node label requirement (Kubernetes `matchExpressions[]` of a node selector term)."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(cel="!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
             message="operators In and NotIn need values",
             check=lambda r: r.operator not in ("In", "NotIn") or len(r.values) > 0),
        Rule(cel="!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
             message="operators Exists and DoesNotExist take no values",
             check=lambda r: r.operator not in ("Exists", "DoesNotExist") or not r.values),
        Rule(cel="!(self.operator in ['Gt', 'Lt']) || (has(self.values) && size(self.values) == 1 && self.values[0].matches('^-?[0-9]{1,18}$'))",
             message="operators Gt and Lt take exactly one integer value",
             check=lambda r: r.operator not in ("Gt", "Lt") or (
                 len(r.values) == 1 and re.fullmatch(r"-?[0-9]{1,18}", r.values[0]) is not None)),
        Rule(cel=f"!(self.key in {_cel_list(OPERATOR_NODE_LABELS)})",
             message=f"{', '.join(OPERATOR_NODE_LABELS)} are set by the operator (use resources.gpu.product)",
             check=lambda r: r.key not in OPERATOR_NODE_LABELS),
    )

    key: str = spec_field("Node label key.", pattern=LABEL_KEY, max_length=LABEL_KEY_MAX)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = spec_field("How the label is compared.")
    values: list[str] = spec_field("Label values (In, NotIn) or one integer (Gt, Lt).", default_factory=list,
                                   max_items=32, item_pattern=LABEL_VALUE, item_max_length=63)


@dataclasses.dataclass(frozen=True)
class NodeTerm:
    """Requirements a node must all meet (ANDed); the terms of scheduling.nodeAffinity are ORed."""

    match_expressions: list[NodeRequirement] = spec_field("Requirements, all of which must hold.", max_items=16,
                                                          rules=(NOT_EMPTY,))


@dataclasses.dataclass(frozen=True)
class Scheduling:
    """Where the cloud (GPU) pods may run, beside what the operator requires (a GPU node that is not an
    edge node, resources.gpu.product). Edge groups place their pods with edge[].nodeLabels instead."""

    tolerations: list[Toleration] = spec_field(
        "Taints the pods tolerate, after the operator's own nvidia.com/gpu toleration (e.g. sku=gpu:NoSchedule).",
        default_factory=list, max_items=16,
    )
    node_selector: dict[str, str] = spec_field(
        "Node labels the pods require (ANDed with the operator's node affinity).", default_factory=dict, max_items=16,
    )
    node_affinity: list[NodeTerm] = spec_field(
        "Required node affinity terms (ORed); the operator's requirements are added to each term.",
        default_factory=list, max_items=8,
    )


@dataclasses.dataclass(frozen=True)
class ScalingTarget:
    """The load signal and the load one replica serves at the SLO."""

    query: str = spec_field(
        "PromQL returning the total load of this deployment; empty uses the engine's running plus waiting requests.",
        default="",
    )
    per_replica: float = spec_field("Load one replica serves at the SLO (the scaling threshold).", default=8.0, minimum=0.001)


@dataclasses.dataclass(frozen=True)
class Predictive:
    """Forecast-driven replica floor: the predictor writes status.forecast, the operator raises the minimum to it."""

    enabled: bool = spec_field(
        "Raise the autoscaler's minimum to the predictor's fresh forecast; false returns to purely reactive scaling at once.",
        default=False,
    )
    quantile: float = spec_field(
        "Forecast quantile the floor covers (higher: fewer SLO misses, more GPU-hours).", default=0.95, minimum=0.5, maximum=0.99
    )
    horizon_seconds: int | None = spec_field(
        "How far ahead to forecast; unset uses the measured cold start plus the pipeline lag.",
        default=None,
        minimum=1,
        maximum=86400,
    )
    max_floor: int | None = spec_field(
        "Highest replica floor the forecast may set; unset allows up to maxReplicas.", default=None, minimum=1, maximum=1000
    )


@dataclasses.dataclass(frozen=True)
class Autoscaling:
    """Replica autoscaling; when disabled `spec.replicas` is used."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.minReplicas <= self.maxReplicas",
            message="autoscaling.minReplicas must be <= autoscaling.maxReplicas",
            check=lambda a: a.min_replicas <= a.max_replicas,
        ),
        Rule(
            cel="self.minReplicas >= 1 || self.engine == 'keda'",
            message="autoscaling.minReplicas 0 (scale to zero) needs engine keda",
            check=lambda a: a.min_replicas >= 1 or a.engine == "keda",
        ),
        Rule(
            cel="self.minReplicas >= 1 || size(self.target.query) > 0",
            message="autoscaling.minReplicas 0 (scale to zero) needs autoscaling.target.query: the default load query "
                    "counts the requests the engine pods report, and with no pod it stays 0, so nothing would ever "
                    "scale the model up again; give a query on a signal that exists without pods (e.g. the gateway's "
                    "or the mesh's request rate for this model), or keep minReplicas at 1 or more",
            check=lambda a: a.min_replicas >= 1 or bool(a.target.query),
        ),
        Rule(
            cel="!has(self.predictive) || !has(self.predictive.maxFloor) || self.predictive.maxFloor <= self.maxReplicas",
            message="autoscaling.predictive.maxFloor must be <= autoscaling.maxReplicas",
            check=lambda a: a.predictive.max_floor is None or a.predictive.max_floor <= a.max_replicas,
        ),
    )

    enabled: bool = spec_field("Scale replicas on load instead of using spec.replicas.", default=False)
    engine: Literal["keda", "hpa"] = spec_field(
        "keda renders a KEDA ScaledObject (an HPA is used instead when KEDA is not installed); hpa renders an autoscaling/v2 HPA.",
        default="keda",
    )
    min_replicas: int = spec_field("Fewest replicas; 0 allows scale to zero (KEDA only).", default=1, minimum=0, maximum=1000)
    max_replicas: int = spec_field("Most replicas.", default=4, minimum=1, maximum=1000)
    target: ScalingTarget = spec_field("Load signal and per-replica capacity.", default_factory=ScalingTarget)
    prometheus_address: str = spec_field(
        "Prometheus URL KEDA queries.", default="http://prometheus-operated.monitoring.svc:9090", pattern=HTTP_URL
    )
    polling_interval_seconds: int = spec_field("How often KEDA evaluates the query.", default=15, minimum=5, maximum=600)
    cooldown_seconds: int = spec_field("KEDA wait before scaling to zero.", default=300, minimum=0, maximum=86400)
    scale_down_stabilization_seconds: int = spec_field(
        "Scale-down stabilisation window: GPU pods are slow to come back, so shed them slowly.",
        default=600,
        minimum=0,
        maximum=3600,
    )
    predictive: Predictive = spec_field(
        "Predictive floor from the forecast in status.forecast (see docs/pipeline.md).", default_factory=Predictive
    )


@dataclasses.dataclass(frozen=True)
class Retries:
    """Istio retries. Every retry repeats a full GPU generation, so the default is none."""

    attempts: int = spec_field("Retry attempts; 0 disables retries.", default=0, minimum=0, maximum=3)
    retry_on: str = spec_field(
        "Envoy retry conditions (comma-separated, no spaces: Istio's retryOn policies or HTTP status codes); "
        "the default only retries requests that never reached the engine.",
        default="connect-failure,refused-stream,reset-before-request",
        max_length=512,
        rules=(
            NOT_EMPTY,  # empty would mean Istio's default, which also retries requests the engine saw
            Rule(cel=f"self.split(',').all(p, p in {_cel_list(RETRY_ON)})",
                 message="every retryOn condition must be one Istio accepts: " + ", ".join(RETRY_ON[:16])
                         + " or an HTTP status code (comma-separated, no spaces)",
                 check=retry_on_ok),
        ),
    )
    per_try_timeout_seconds: int = spec_field(
        "Timeout of each attempt; 0 uses the route timeout.", default=0, minimum=0, maximum=86400
    )


Provider = Literal["istio", "gateway-api", "inference-pool"]
# The endpoint picker the inference extension ships (lwepp; its flags: pkg/lwepp/server/options.go at v1.6.0).
ENDPOINT_PICKER_IMAGE = "registry.k8s.io/gateway-api-inference-extension/lwepp:v1.6.0"
# Gateway API SectionName (a DNS subdomain, gateway-api apis/v1/shared_types.go).
SECTION_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Gateway API Hostname (apis/v1/shared_types.go): lower case, no trailing dot, a wildcard only as a leading `*.`.
HTTPROUTE_HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


@dataclasses.dataclass(frozen=True)
class ParentRef:
    """A Gateway the HTTPRoute attaches to (gateway-api and inference-pool providers)."""

    name: str = spec_field("Gateway name.", pattern=DNS_SUBDOMAIN, max_length=253)
    namespace: str = spec_field("Gateway namespace; empty: the resource's own (another one must allow the route).",
                                default="", pattern=r"^$|" + DNS_LABEL, max_length=63)
    section_name: str = spec_field("Listener of that Gateway; empty: every listener that allows the route.",
                                   default="", pattern=r"^$|" + SECTION_NAME, max_length=253)


@dataclasses.dataclass(frozen=True)
class EndpointPicker:
    """The endpoint picker (ext-proc) each revision's InferencePool names (inference-pool provider)."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.service == '' || (self.image == '' && (!has(self.args) || size(self.args) == 0) && "
                "self.serviceAccountName == '')",
            message="endpointPicker.service names an existing picker: image, args and serviceAccountName configure "
                    "the one the operator renders and would be ignored",
            check=lambda p: not p.service or (not p.image and not p.args and not p.service_account_name),
        ),
    )

    service: str = spec_field(
        "An existing picker Service every revision's InferencePool references; empty: the operator runs one picker "
        "Deployment + Service per revision (<name>-<revision>-epp) from `image`.",
        default="", pattern=r"^$|" + DNS_LABEL, max_length=63)
    port: int = spec_field("The picker Service's gRPC port.", default=9002, minimum=1, maximum=65535)
    image: str = spec_field(f"Image of the rendered picker; empty: {ENDPOINT_PICKER_IMAGE}.", default="",
                            pattern=r"^$|" + IMAGE, max_length=512)
    args: list[str] = spec_field(
        "Extra flags of the rendered picker, after the operator's --pool-name, --pool-namespace, --grpc-port and "
        "--endpoint-target-ports.", default_factory=list, max_items=32, rules=(NO_EMPTY_ITEM,))
    service_account_name: str = spec_field(
        "ServiceAccount of the rendered picker; it must exist and may read (get, list, watch) Pods and InferencePools "
        "in the namespace (docs/routing.md has the Role); empty: the namespace's default, which may not.",
        default="", pattern=r"^$|" + DNS_SUBDOMAIN, max_length=253)
    failure_mode: Literal["FailClose", "FailOpen"] = spec_field(
        "What the gateway does while the picker does not answer: refuse (FailClose) or pick any pod (FailOpen).",
        default="FailClose")

    @property
    def rendered_image(self) -> str:
        """The rendered picker's image: `image`, or the inference extension's own."""
        return self.image or ENDPOINT_PICKER_IMAGE


@dataclasses.dataclass(frozen=True)
class Traffic:
    """Routing to the current revision: Istio (VirtualService), or a Gateway API HTTPRoute to Services or InferencePools."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.provider == 'istio' || !has(self.gateways) || size(self.gateways) == 0",
            message="traffic.gateways are Istio gateways; with provider gateway-api or inference-pool use traffic.parentRefs",
            check=lambda t: t.provider == "istio" or not t.gateways,
        ),
        Rule(
            cel="self.provider != 'istio' || !has(self.parentRefs) || size(self.parentRefs) == 0",
            message="traffic.parentRefs are Gateway API parents; with provider istio use traffic.gateways",
            check=lambda t: t.provider != "istio" or not t.parent_refs,
        ),
        Rule(
            cel="self.provider == 'istio' || self.retries.attempts == 0",
            message="traffic.retries need provider istio (HTTPRoute retries are not in the Gateway API standard channel)",
            check=lambda t: t.provider == "istio" or t.retries.attempts == 0,
        ),
        Rule(
            cel="self.provider == 'istio' || (has(self.parentRefs) && size(self.parentRefs) > 0)",
            message="provider gateway-api or inference-pool needs traffic.parentRefs: an HTTPRoute attached to no "
                    "Gateway serves nothing",
            check=lambda t: t.provider == "istio" or bool(t.parent_refs),
        ),
        Rule(
            cel="self.provider == 'inference-pool' || !has(self.endpointPicker)",
            message="traffic.endpointPicker configures the InferencePools' picker: it needs provider inference-pool",
            check=lambda t: t.provider == "inference-pool" or t.endpoint_picker is None,
        ),
        Rule(
            cel="self.provider != 'istio' || !has(self.hosts) || !self.hosts.exists(h, h == '*')",
            message="traffic.hosts: '*' is not allowed with provider istio: the VirtualService is always bound to the "
                    "mesh gateway (in-cluster callers), where Istio refuses a wildcard host; list the host names the "
                    "gateway serves",
            check=lambda t: t.provider != "istio" or "*" not in t.hosts,
        ),
        Rule(
            cel=f"self.provider == 'istio' || !has(self.hosts) || self.hosts.all(h, size(h) <= 253 && "
                f"h.matches(r'{HTTPROUTE_HOSTNAME}'))",
            message="traffic.hosts of an HTTPRoute (provider gateway-api or inference-pool) are lower-case DNS names, "
                    "optionally starting with '*.' (no '*' alone, other wildcard or trailing dot), at most 253 characters",
            check=lambda t: t.provider == "istio" or all(len(h) <= 253 and matches(HTTPROUTE_HOSTNAME, h) for h in t.hosts),
        ),
    )

    provider: Provider = spec_field(
        "Who splits traffic between revisions: istio (VirtualService + DestinationRule), gateway-api (an HTTPRoute to "
        "one Service per revision) or inference-pool (an HTTPRoute to one InferencePool per revision). See docs/routing.md.",
        default="istio")
    parent_refs: list[ParentRef] = spec_field(
        "Gateways the HTTPRoute attaches to (gateway-api, inference-pool).", default_factory=list, max_items=16)
    endpoint_picker: EndpointPicker | None = spec_field(
        "The InferencePools' endpoint picker (inference-pool only); absent: one rendered per revision with the defaults.",
        default=None)

    hosts: list[str] = spec_field(
        "Extra host names routed to this model, e.g. glm.example.com or *.example.com. Istio: VirtualService hosts "
        "(not '*': in-mesh traffic is always routed, and Istio refuses a wildcard host bound to the mesh); gateway-api "
        "and inference-pool: HTTPRoute hostnames (lower case, only a leading '*.' wildcard).",
        default_factory=list, max_items=16, item_pattern=r"^$|" + HOST, item_max_length=HOST_MAX_LENGTH, list_set=True,
        rules=(NO_EMPTY_ITEM,),
    )
    gateways: list[str] = spec_field(
        "Istio gateways (namespace/name, e.g. istio-system/public) the hosts are exposed on; in-mesh traffic is always routed.",
        default_factory=list, max_items=16, item_pattern=r"^$|" + GATEWAY, list_set=True,  # empty: NO_EMPTY_ITEM says so
        rules=(NO_EMPTY_ITEM,),
    )
    timeout_seconds: int = spec_field(
        "Request timeout; long because streamed generations last minutes.", default=600, minimum=1, maximum=86400
    )
    retries: Retries = spec_field("Retry policy.", default_factory=Retries)


@dataclasses.dataclass(frozen=True)
class Jwt:
    """End-user JWT validation; requests without a valid token are refused."""

    issuer: str = spec_field("Token issuer (iss claim).", rules=(NOT_EMPTY,))
    jwks_uri: str = spec_field("URL of the issuer's JSON Web Key Set.", pattern=HTTP_URL, max_length=2048)
    audiences: list[str] = spec_field("Accepted aud values; empty accepts any.", default_factory=list, max_items=16,
                                      rules=(NO_EMPTY_ITEM,))


@dataclasses.dataclass(frozen=True)
class Security:
    """Istio mTLS and caller authorization (needs Istio)."""

    mtls: Literal["STRICT", "PERMISSIVE"] = spec_field("Peer authentication mode for the model's pods.", default="STRICT")
    allowed_principals: list[str] = spec_field(
        "SPIFFE principals allowed to call, e.g. cluster.local/ns/web/sa/frontend.", default_factory=list, max_items=64,
        rules=(NO_EMPTY_ITEM,),
    )
    allowed_namespaces: list[str] = spec_field(
        "Namespaces allowed to call; when both lists are empty only the model's own namespace may call.",
        default_factory=list,
        max_items=64,
        rules=(NO_EMPTY_ITEM,),
    )
    jwt: Jwt | None = spec_field("Require an end-user JWT from this issuer.", default=None)


EDGE_QUANTIZATION = Literal["", "none", "awq", "gptq", "fp8"]


@dataclasses.dataclass(frozen=True)
class EdgeResources:
    """Compute per edge pod; edge nodes are small, so nothing is inherited from the cloud pods."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.gpuProduct == '' || self.gpuCount > 0",
            message="edge resources.gpuProduct needs resources.gpuCount > 0",
            check=lambda r: not r.gpu_product or r.gpu_count > 0,
        ),
    )

    gpu_count: int = spec_field("nvidia.com/gpu per edge pod; 0 runs without a GPU.", default=0, minimum=0, maximum=16)
    gpu_product: str = spec_field(
        "Required value of the node label nvidia.com/gpu.product (e.g. NVIDIA-Jetson-AGX-Orin); empty accepts any.",
        default="",
        pattern=LABEL_VALUE,
    )
    cpu: str = spec_field("CPU request and limit; empty leaves it unset.", default="", pattern=r"^$|" + QUANTITY,
                     canonical=canonical_quantity)
    memory: str = spec_field("Memory request and limit; empty leaves it unset.", default="", pattern=r"^$|" + QUANTITY,
                        canonical=canonical_quantity)


@dataclasses.dataclass(frozen=True)
class EdgeGroup:
    """The model on one group of edge nodes (a KubeEdge NodeGroup), with its own overrides."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.nodeLabels.size() > 0",
            message="edge[].nodeLabels must select the group's nodes with at least one label",
            check=lambda g: len(g.node_labels) > 0,
        ),
    )

    name: str = spec_field("Group name, unique in spec.edge (part of the NodeGroup and Deployment names).",
                           pattern=DNS_LABEL, max_length=20)
    node_labels: dict[str, str] = spec_field(
        "Labels an edge node (node-role.kubernetes.io/edge) must carry to belong to this group, "
        "e.g. autoglm.io/edge-group: site-a.",
        max_items=16,
    )
    replicas: int = spec_field("Pods in this group.", default=1, minimum=0, maximum=100)
    image: str = spec_field(
        "Container image for this group (e.g. an ARM64 build); empty uses the cloud image. Digests are not supported.",
        default="",
        pattern=r"^$|^[A-Za-z0-9][-A-Za-z0-9._/:]*$",
    )
    quantization: EDGE_QUANTIZATION = spec_field("Weight quantization for this group; empty keeps the cloud setting.",
                                                default="")
    max_model_len: int = spec_field("Maximum context length for this group; 0 keeps the cloud setting.", default=0, minimum=0)
    args: list[str] = spec_field("Extra engine flags for this group, after the cloud ones.", default_factory=list, max_items=32,
                                 rules=(NO_EMPTY_ITEM,))
    env: list[EnvVar] = spec_field(
        "Environment variables for this group: added, or replacing runtime.env entries of the same name "
        "(HOME, HF_HOME are the operator's: refused).",
        default_factory=list, max_items=32, map_key="name", rules=(NO_OPERATOR_ENV,))
    resources: EdgeResources = spec_field("Compute per pod in this group.", default_factory=EdgeResources)


@dataclasses.dataclass(frozen=True)
class Spec:
    """Desired state of one served model."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.resources.gpu.count % self.runtime.tensorParallelSize == 0",
            message="resources.gpu.count must be a multiple of runtime.tensorParallelSize",
            check=lambda s: s.resources.gpu.count % s.runtime.tensor_parallel_size == 0,
        ),
    )
    # While autoscaling is on, the autoscaler sets the replica count and spec.replicas is unused:
    # `kubectl scale agd/NAME` (the scale subresource writes spec.replicas, and the API server checks
    # the resulting object against these rules) or an edit of it would be accepted and do nothing.
    # Switching autoscaling on or off may set spec.replicas in the same update.
    TRANSITION_RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!self.autoscaling.enabled || !oldSelf.autoscaling.enabled || self.replicas == oldSelf.replicas",
            message="spec.replicas cannot change while autoscaling.enabled is true (the autoscaler sets the replicas): "
                    "change autoscaling.minReplicas or maxReplicas, or set autoscaling.enabled to false in the same update",
            check=lambda pair: (not pair[1].autoscaling.enabled or not pair[0].autoscaling.enabled
                                or pair[1].replicas == pair[0].replicas),
        ),
    )

    model: Model = spec_field("The model to serve.")
    runtime: Runtime = spec_field("Inference engine settings.", default_factory=Runtime)
    resources: Resources = spec_field("Compute per pod.", default_factory=Resources)
    scheduling: Scheduling = spec_field("Tolerations and node selection of the cloud pods.", default_factory=Scheduling)
    replicas: int = spec_field("Replicas when autoscaling is disabled.", default=1, minimum=0, maximum=1000)
    autoscaling: Autoscaling = spec_field("Load-based autoscaling.", default_factory=Autoscaling)
    traffic: Traffic = spec_field("Routing (Istio, or Gateway API HTTPRoute).", default_factory=Traffic)
    security: Security = spec_field("Istio security.", default_factory=Security)
    rollout: Rollout | None = spec_field(
        "Progressive delivery of new revisions (canary through traffic.provider); absent: switch once the new revision is Ready.",
        default=None,
    )
    edge: list[EdgeGroup] = spec_field(
        "Edge node groups that also serve the model (KubeEdge NodeGroups, or pinned Deployments without KubeEdge).",
        default_factory=list,
        max_items=16,
        map_key="name",
    )


@dataclasses.dataclass(frozen=True)
class Instance:
    """A parsed resource: its identity plus its spec."""

    name: str
    namespace: str
    spec: Spec


def parse_instance(cr: dict[str, Any]) -> Instance:
    """Parse and validate a whole `AutoGLMDeployment`, raising InvalidSpec with the field path."""
    if cr.get("apiVersion") != f"{GROUP}/{VERSION}" or cr.get("kind") != KIND:
        raise InvalidSpec(f"expected apiVersion {GROUP}/{VERSION} kind {KIND}")
    meta = cr.get("metadata") or {}
    name = meta.get("name", "")
    if not NAME_RULE.check(name):
        raise InvalidSpec(f"{NAME_RULE.message}, got {name!r}")
    return Instance(name=name, namespace=meta.get("namespace") or "default", spec=parse(Spec, cr.get("spec"), "spec"))


def _check_label(path: str, key: str, value: str | None) -> None:
    if key.find("/") > 253 or not matches(LABEL_KEY, key):
        raise InvalidSpec(f"{path}: {key[:80]!r} is not a label key "
                          "(a name of at most 63 characters with an optional DNS prefix, e.g. example.com/site)")
    if value is not None and not matches(LABEL_VALUE, value):
        raise InvalidSpec(f"{path}.{key}: {value[:80]!r} is not a label value "
                          "(at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)")


def check_labels(spec: Spec) -> None:
    """Node labels and taint keys the API server refuses unless they are labels: edge node labels and
    scheduling.nodeSelector (as CEL over map keys the checks would exceed the CRD's cost budget), and
    the DNS prefix of every key (at most 253 characters, which RE2 cannot say without lookahead)."""
    for group in spec.edge:
        for key, value in group.node_labels.items():
            _check_label(f"spec.edge[{group.name}].nodeLabels", key, value)
    scheduling = spec.scheduling
    for key, value in scheduling.node_selector.items():
        _check_label("spec.scheduling.nodeSelector", key, value)
        if key in OPERATOR_NODE_LABELS:
            raise InvalidSpec(f"spec.scheduling.nodeSelector: {key} is set by the operator "
                              f"({', '.join(OPERATOR_NODE_LABELS)}; use resources.gpu.product)")
    for i, toleration in enumerate(scheduling.tolerations):
        if toleration.key:
            _check_label(f"spec.scheduling.tolerations[{i}].key", toleration.key, None)
    for i, term in enumerate(scheduling.node_affinity):
        for j, requirement in enumerate(term.match_expressions):
            _check_label(f"spec.scheduling.nodeAffinity[{i}].matchExpressions[{j}].key", requirement.key, None)


def check_capabilities(spec: Spec, *, keda: bool, istio: bool) -> None:
    """Refuse specs that ask for something the cluster cannot provide, instead of dropping it."""
    scaling = spec.autoscaling
    if scaling.enabled and scaling.min_replicas == 0 and not keda:
        raise MissingCapability("spec.autoscaling.minReplicas 0 needs KEDA, which is not installed (an HPA cannot scale to zero)",
                                "keda")
    uses_keda = scaling.engine == "keda" and keda
    if scaling.enabled and scaling.target.query and not uses_keda:
        raise MissingCapability("spec.autoscaling.target.query needs KEDA (an HPA reads the engine's metric, not PromQL)",
                                "keda")
    if not istio:
        routed = spec.traffic.provider == "istio"  # the other providers' needs: render/gateway.py check_gateway
        wanted = [
            ("spec.traffic.hosts", routed and spec.traffic.hosts),
            ("spec.traffic.gateways", spec.traffic.gateways),
            ("spec.traffic.retries.attempts", spec.traffic.retries.attempts),
            ("spec.security.allowedPrincipals", spec.security.allowed_principals),
            ("spec.security.allowedNamespaces", spec.security.allowed_namespaces),
            ("spec.security.jwt", spec.security.jwt),
            ("spec.rollout", routed and spec.rollout),
        ]
        used = [path for path, value in wanted if value]
        if used:
            verb = "needs" if len(used) == 1 else "need"
            raise MissingCapability(f"{', '.join(used)} {verb} Istio, which is not installed", "istio")
