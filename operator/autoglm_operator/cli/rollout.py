"""`autoglm rollout status|pause|resume|promote|abort|retry NAME [-n NS]`, also `kubectl autoglm rollout ...`.

Every control is a plain patch anyone could type with kubectl, so the CLI needs no more rights
than `kubectl patch`:
- pause/resume: merge patch `spec.rollout.paused` true/false;
- promote/abort/retry: the annotation `autoglm.io/rollout-action=<action>:<nonce>`; the operator
  consumes each value once (status.canary.lastAction), so repeating a command is harmless.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from autoglm_operator.api.spec import GROUP, PLURAL, VERSION
from autoglm_operator.api.status import Phase
from autoglm_operator.rollout.canary import ACTION_ANNOTATION, ACTIVE, FAILED

VERBS = ("status", "pause", "resume", "promote", "abort", "retry")


# The canary phases (status.canary.phase) in which each annotation action does something; the machine's
# `apply_action` (rollout/canary.py) ignores it in any other phase, with only an Event to say so.
ACTS_IN: dict[str, tuple[Phase, ...]] = {
    "promote": (Phase.PROGRESSING, Phase.PAUSED),
    "abort": ACTIVE,
    "retry": FAILED,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    rollout = subparsers.add_parser("rollout", help="show or control the canary rollout of an AutoGLMDeployment")
    rollout.add_argument("verb", choices=VERBS, help="status, pause, resume, promote (skip remaining steps), abort, retry")
    rollout.add_argument("name", help="AutoGLMDeployment name")
    rollout.add_argument("-n", "--namespace", default=None, help="namespace (default: the kubeconfig context's)")
    rollout.add_argument("-o", "--output", choices=["text", "json"], default="text", help="status format")
    rollout.set_defaults(func=run_rollout)


def action_patch(verb: str, nonce: str | None = None) -> dict[str, Any]:
    """The merge patch a control verb sends."""
    if verb in ("pause", "resume"):
        return {"spec": {"rollout": {"paused": verb == "pause"}}}
    return {"metadata": {"annotations": {ACTION_ANNOTATION: f"{verb}:{nonce or uuid.uuid4().hex[:12]}"}}}


def refusal(verb: str, cr: dict[str, Any]) -> str | None:
    """Why `verb` would do nothing on the resource as read, or None when it acts.

    Without this, the patch is accepted whatever the state and the CLI said "requested" and exited
    0 where the operator only records a CanaryActionIgnored Event nobody reads. Pause and resume
    set spec.rollout.paused (a pause with no canary holds the next one); the actions need their phase.
    """
    rollout = (cr.get("spec") or {}).get("rollout")
    if not rollout:
        return f"no spec.rollout: new revisions take traffic as soon as they are Ready; nothing to {verb}"
    paused = bool(rollout.get("paused"))
    if verb == "pause" and paused:
        return "already paused (spec.rollout.paused is true)"
    if verb == "resume" and not paused:
        return "not paused (spec.rollout.paused is not true)"
    if verb not in ACTS_IN:
        return None
    canary = ((cr.get("status") or {}).get("canary") or {})
    phase = canary.get("phase")
    if phase in ACTS_IN[verb]:
        return None
    wanted = " or ".join(ACTS_IN[verb])
    now = f"canary {canary.get('revision')} is {phase}" if phase else "no canary has started"
    return f"{now}; {verb} acts only on a canary that is {wanted}"


def describe(cr: dict[str, Any]) -> str:
    """A human summary of status.canary and the conditions."""
    status = cr.get("status") or {}
    canary = status.get("canary") or {}
    meta = cr["metadata"]
    lines = [f"{meta['namespace']}/{meta['name']}: phase {status.get('phase', '-')}, stable {status.get('currentRevision', '-')}"]
    observed, generation = status.get("observedGeneration"), meta.get("generation")
    if observed is None:
        lines.append("no status yet: no operator has reconciled this resource; is one running and watching "
                     f"namespace {meta['namespace']}? (kubectl get deploy -A -l app.kubernetes.io/component=operator)")
    elif generation is not None and observed < generation:
        lines.append(f"status is for generation {observed}, the spec is at {generation}: the operator has not caught up")
    if not (cr.get("spec") or {}).get("rollout"):
        lines.append("no spec.rollout: new revisions take traffic as soon as they are Ready")
    if canary.get("phase"):
        lines.append(f"canary {canary.get('revision')}: {canary['phase']}"
                     + (f", step {canary['step'] + 1}" if canary.get("step") is not None else "")
                     + f", weight {canary.get('weight', 0)}%, mirror {canary.get('mirror', 0)}%"
                     + f", failed checks {canary.get('failedChecks', 0)}")
        if canary.get("message"):
            lines.append(f"  {canary['message']}")
    for check in canary.get("analysis") or []:
        value = check.get("value")
        stable = check.get("stable")
        lines.append(f"  {check['name']:<14} {check['result']:<6} value={'-' if value is None else f'{value:.4g}'}"
                     f" stable={'-' if stable is None else f'{stable:.4g}'} {check.get('message', '')}".rstrip())
    for entry in canary.get("retiring") or []:
        lines.append(f"  retiring {entry['revision']} at {entry['at']}")
    for cond in status.get("conditions") or []:
        lines.append(f"{cond['type']}={cond['status']} {cond.get('reason', '')}: {cond.get('message', '')}")
    for entry in canary.get("history") or []:
        lines.append(f"history: {entry.get('finishedAt', '')} {entry['revision']} {entry['result']}: {entry.get('message', '')}")
    return "\n".join(lines) + "\n"


def run_rollout(args: argparse.Namespace) -> int:
    from kubernetes import client, config  # only this command needs a cluster

    from autoglm_operator.reconcile.apply import server_message

    try:
        config.load_kube_config()
        namespace = args.namespace or config.list_kube_config_contexts()[1]["context"].get("namespace", "default")
    except config.ConfigException:
        config.load_incluster_config()
        namespace = args.namespace or "default"
    api = client.CustomObjectsApi()
    try:
        cr = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name)
        if args.verb != "status":
            why = refusal(args.verb, cr)
            if why:
                print(f"autoglm rollout {args.verb}: {namespace}/{args.name}: {why}", file=sys.stderr)
                return 1
            cr = api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name,
                                                    action_patch(args.verb), _content_type="application/merge-patch+json")
    except client.ApiException as exc:
        # The API server's words: `autoglmdeployments.autoglm.io "x" not found`, or who may not do what.
        print(f"autoglm rollout {args.verb}: {namespace}/{args.name}: {server_message(exc)}", file=sys.stderr)
        return 1
    if args.verb != "status":
        print(f"{args.verb} requested for {namespace}/{args.name}")
    if args.output == "json":
        sys.stdout.write(json.dumps((cr.get("status") or {}).get("canary") or {}, indent=2) + "\n")
    elif args.verb == "status":
        sys.stdout.write(describe(cr))
    return 0


def kubectl_parser() -> argparse.ArgumentParser:
    """The plugin's parser: named as typed (`kubectl autoglm`), with only the commands that act on
    a cluster's AutoGLMDeployments; `autoglm` keeps the rest (operator, render, train, ...)."""
    parser = argparse.ArgumentParser(prog="kubectl autoglm", description="Show or control AutoGLMDeployment rollouts.")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser


def kubectl_main(argv: list[str] | None = None) -> int:
    """`kubectl autoglm ...` (kubectl finds `kubectl-autoglm` on PATH)."""
    args = kubectl_parser().parse_args(argv)
    return int(args.func(args) or 0)
