"""Append-only, hash-chained audit events: who did what, why, with what evidence.

Each event stores the sha256 of the previous event's hash together with its own canonical content,
so editing, deleting, inserting or reordering any row breaks the chain at a nameable place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before the log gives it a sequence number and a place in the chain."""

    action: str
    actor: str
    model: str | None = None
    env: str | None = None
    subject: str | None = None
    reason: str = ""
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    outcome: str = "ok"  # "ok": a mutation; "refused" or "failed": an attempt that changed nothing


@dataclass(frozen=True, slots=True)
class Event:
    """A committed audit record."""

    seq: int
    at: datetime
    draft: EventDraft
    prev_hash: str
    hash: str

    @property
    def action(self) -> str:
        return self.draft.action

    @property
    def actor(self) -> str:
        return self.draft.actor


def canonical_body(seq: int, at: datetime, draft: EventDraft) -> bytes:
    """The bytes an event's hash covers: every field but the hashes, in canonical JSON."""
    body = {
        "seq": seq,
        "at": at.isoformat(),
        "action": draft.action,
        "actor": draft.actor,
        "model": draft.model,
        "env": draft.env,
        "subject": draft.subject,
        "reason": draft.reason,
        "before": draft.before,
        "after": draft.after,
        "evidence": draft.evidence,
        "outcome": draft.outcome,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def chain_hash(prev_hash: str, seq: int, at: datetime, draft: EventDraft) -> str:
    """The hash of an event given the hash of the one before it."""
    return hashlib.sha256(prev_hash.encode() + canonical_body(seq, at, draft)).hexdigest()


def seal(prev: tuple[int, str], at: datetime, draft: EventDraft) -> Event:
    """Make the event that follows `prev` = (seq, hash) of the chain's current head."""
    seq = prev[0] + 1
    return Event(seq=seq, at=at, draft=draft, prev_hash=prev[1],
                 hash=chain_hash(prev[1], seq, at, draft))


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of checking the chain: `first_bad` is None when intact."""

    checked: int
    first_bad: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def verify_chain(events: Iterable[Event], *, head: tuple[int, str] | None = None) -> ChainReport:
    """Walk events in stored order; name the first one that is edited, missing, inserted or moved.

    `head` is the (seq, hash) the log recorded separately as its tip, so a deleted last event shows.
    """
    prev_seq, prev_hash, count = 0, GENESIS_HASH, 0
    for event in events:
        count += 1
        if event.seq != prev_seq + 1:
            return ChainReport(count, event.seq, f"expected event #{prev_seq + 1}, found "
                               f"#{event.seq}: an event was deleted, inserted or reordered")
        if event.prev_hash != prev_hash:
            return ChainReport(count, event.seq, f"event #{event.seq} does not follow "
                               f"#{prev_seq}: an event was inserted or reordered")
        if chain_hash(prev_hash, event.seq, event.at, event.draft) != event.hash:
            return ChainReport(count, event.seq, f"event #{event.seq} was edited: its content "
                               "no longer matches its hash")
        prev_seq, prev_hash = event.seq, event.hash
    if head is not None and head != (prev_seq, prev_hash):
        return ChainReport(count, prev_seq + 1, f"the log's head is #{head[0]} but the chain "
                           f"ends at #{prev_seq}: events after #{prev_seq} were deleted")
    return ChainReport(count)
