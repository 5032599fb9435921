"""Counting what one identity wrote, from the API server's audit log (cluster.py's AUDIT_POLICY
records every write at Metadata level). Shared by the operator's e2e tests and the benchmark.

Counting the requests the API server completed, rather than resourceVersions or client-side
counters, sees every write: kopf's own annotation patches and Events included.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def offset(audit_log: Path) -> int:
    """The log's size now: pass it as `since` to see only what comes after."""
    return audit_log.stat().st_size


def writes(audit_log: Path, user: str, since: int) -> list[dict[str, Any]]:
    """Write requests `user` completed since the audit log had `since` bytes."""
    quoted = json.dumps(user)
    found = []
    with open(audit_log, encoding="utf-8") as log:
        log.seek(since)
        for line in log:
            if quoted not in line:  # most lines are other identities' (kwok, controllers); skip decoding them
                continue
            entry = json.loads(line)
            if entry.get("stage") == "ResponseComplete" and entry["user"]["username"] == user and entry["verb"] in WRITE_VERBS:
                found.append(entry)
    return found


def writes_to(audit_log: Path, resource: str, namespace: str, name: str, since: int,
              subresource: str | None = None) -> list[dict[str, Any]]:
    """Write requests anyone completed on one object (or one subresource of it) since `since` bytes."""
    quoted = json.dumps(name)
    found = []
    with open(audit_log, encoding="utf-8") as log:
        log.seek(since)
        for line in log:
            if quoted not in line:
                continue
            entry = json.loads(line)
            ref = entry.get("objectRef") or {}
            if (entry.get("stage") == "ResponseComplete" and entry["verb"] in WRITE_VERBS
                    and (ref.get("resource"), ref.get("namespace"), ref.get("name"), ref.get("subresource"))
                    == (resource, namespace, name, subresource)):
                found.append(entry)
    return found
