"""Triage of problem audit records: acknowledged, resolved, and reopened when the pk's problem recurs.

Pure: the web views call it; the records live in a compacted topic (``DQHASH_TRIAGE_TOPIC``, key = audit id)
that every worker follows (``dqhash.kafka.triage_log``), so a triage survives restarts and failover and any
worker answers for the whole group.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from dqhash.core.timeutil import format_ms

ACTIONS = {"ack": "acknowledged", "resolve": "resolved"}
STATES = ("open", "acknowledged", "resolved")
MAX_NOTE, MAX_WHO = 2000, 200
_AUDIT_ID = re.compile(r"[0-9a-f]{32}")


class TriageError(ValueError):
    """A request the triage endpoints refuse (400), with what to change."""


def check_audit_id(audit_id: str) -> str:
    if not _AUDIT_ID.fullmatch(audit_id):
        raise TriageError(f"not an audit id (32 hex characters): {audit_id[:40]!r}")
    return audit_id


def parse_body(raw: bytes) -> tuple[str, str]:
    """``{"who": "...", "note": "..."}`` → (who, note); ``who`` is required, so every change is signed."""
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise TriageError(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise TriageError('expected a JSON object: {"who": "...", "note": "..."}')
    who, note = body.get("who"), body.get("note", "")
    if not isinstance(who, str) or not who.strip() or len(who) > MAX_WHO:
        raise TriageError(f'"who" is required: who acknowledges or resolves (at most {MAX_WHO} characters)')
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise TriageError(f'"note" must be text of at most {MAX_NOTE} characters')
    return who.strip(), note


def record(
    audit_id: str, action: str, who: str, note: str, now_ms: int, problem: dict[str, Any] | None
) -> dict[str, Any]:
    """The triage record to publish; ``problem`` is the audit record, when this worker holds it."""
    return {
        "audit_id": audit_id,
        "state": ACTIONS[action],
        "who": who,
        "note": note,
        "at": format_ms(now_ms),
        "pk": problem.get("pk") if problem else None,
        "status": problem.get("status") if problem else None,
    }


class TriageBook:
    """Every audit id's newest triage record (the topic is compacted: one per audit id)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def apply(self, value: dict[str, Any] | None, audit_id: str) -> None:
        if value is None:
            self.records.pop(audit_id, None)  # a tombstone: the triage was withdrawn
        else:
            self.records[audit_id] = value

    def annotate(self, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each problem with its triage: open, acknowledged, resolved, or open again ("reopened") when a newer
        problem of the same pk came after it was resolved."""
        newest_by_pk: dict[tuple[str | None, str], str] = {}  # by (table, pk): a row is a PK of a table
        for item in problems:
            at = item.get("classified_at") or ""
            row = (item.get("table"), item["pk"])
            if at > newest_by_pk.get(row, ""):
                newest_by_pk[row] = at
        out = []
        for item in problems:
            triage = self.records.get(item["audit_id"])
            state = triage["state"] if triage else "open"
            reopened = False
            newest = newest_by_pk.get((item.get("table"), item["pk"]), "")
            if state == "resolved" and newest > (triage or {}).get("at", ""):
                state, reopened = "open", True  # the problem recurred after it was resolved
            out.append({**item, "triage": {**(triage or {}), "state": state, "reopened": reopened}})
        return out


def matches(item: dict[str, Any], state: str | None) -> bool:
    return state is None or item["triage"]["state"] == state


def check_state(state: str | None) -> str | None:
    if state is not None and state not in STATES:
        raise TriageError(f"state must be one of {', '.join(STATES)}")
    return state
