"""Spec (plus the rollout's decisions) -> the Kubernetes objects wanted, as plain dicts; pure."""
