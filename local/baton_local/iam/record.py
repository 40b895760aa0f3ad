"""A record of every IAM decision the local stack makes, one JSON object per line:

    {"principal": "arn:aws:sts::…:assumed-role/…/…", "role": "arn:aws:iam::…:role/…",
     "operation": "ecs:ListTasks", "action": "ecs:ListTasks", "resources": ["*"],
     "context": {…}, "resource_policy": "arn:aws:s3:::bucket" | null,
     "decision": "allow" | "deny", "reason": "allowed by FindTasks", "sid": "FindTasks"}

The suite records with BATON_LOCAL_IAM_RECORD=<file> (baton_local.iam.moto_hook);
baton_local.iam.mutation replays the records against the template's policies with
one Allow statement removed at a time. Appends are serialised by a lock and written
whole, one line per write, so concurrent requests never interleave.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .evaluate import Decision, Request

# The reason recorded for a call that has no row in baton_local.iam.actions.
UNMAPPED = "no row in the actions table"


@dataclass(frozen=True)
class Recorded:
    """One recorded decision."""

    request: Request
    allowed: bool
    reason: str
    sid: str | None
    operation: str | None = None
    resource_policy: str | None = None  # the ARN of the bucket or queue whose policy applied


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def to_line(request: Request, decision: Decision, operation: str | None = None,
            resource_policy: str | None = None) -> str:
    return json.dumps({
        "principal": request.principal, "role": request.role_arn, "operation": operation,
        "action": request.action, "resources": list(request.resources), "context": _jsonable(request.context),
        "resource_policy": resource_policy, "decision": "allow" if decision.allowed else "deny",
        "reason": decision.reason, "sid": decision.sid,
    }, sort_keys=True)


def from_line(line: str) -> Recorded:
    row = json.loads(line)
    request = Request(row["principal"], row["action"], tuple(row["resources"]), row.get("context") or {},
                      row.get("role"))
    return Recorded(request, row["decision"] == "allow", row["reason"], row.get("sid"), row.get("operation"),
                    row.get("resource_policy"))


class Recorder:
    """Appends decisions to a JSON-lines file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, request: Request, decision: Decision, operation: str | None = None,
               resource_policy: str | None = None) -> None:
        line = to_line(request, decision, operation, resource_policy) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line)


def read(path: str | Path) -> Iterator[Recorded]:
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield from_line(line)
