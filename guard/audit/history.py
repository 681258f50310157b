"""Is a newer checkpoint an append-only extension of one seen earlier?

A signed checkpoint only says "this key signed this tree". Nothing in a later export or a later
checkpoint proves the log did not drop entries since, or show someone another history, unless
the holder of an earlier checkpoint checks the new tree against it (RFC 9162 §2.1.4): the
new tree's first ``old.size`` leaves must hash to ``old.root``. :func:`check_extension` does that
with a consistency proof (what the service returns, ``GET /v1/audit/consistency``);
:func:`guard.audit.export.verify_export` does it by recomputing an export's prefix.

    >>> old = verifier.verify(pinned_note)                                  # doctest: +SKIP
    >>> answer = service.get("/v1/audit/consistency", params={"from": old.size}).json()
    >>> check = check_consistency_answer(old, answer, verifier)             # doctest: +SKIP
    >>> check.ok, check.verdict                                             # doctest: +SKIP
    (True, <Verdict.EXTENDS: 'extends'>)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from guard.audit.checkpoint import LEGACY_ORIGIN, Checkpoint, CheckpointVerifier
from guard.audit.merkle import verify_consistency
from guard.errors import InvalidInput


class Verdict(StrEnum):
    EXTENDS = "extends"  # the new tree holds the old one as its prefix, and more
    SAME = "same"  # the same tree (same size, same root)
    ROLLBACK = "rollback"  # the new tree is smaller: entries seen before are gone
    FORK = "fork"  # another history under the same key: same size and another root, or the
    # new tree's prefix is not the old tree
    ORIGIN_CHANGED = "origin_changed"  # the new checkpoint names another log


@dataclass(frozen=True)
class HistoryCheck:
    """The answer to "does ``new`` extend ``old``?", with a message naming what is wrong."""

    verdict: Verdict
    old_size: int
    new_size: int
    message: str

    @property
    def ok(self) -> bool:
        return self.verdict in (Verdict.EXTENDS, Verdict.SAME)


def _origins_agree(old: str, new: str) -> bool:
    # A log that began under the shared legacy origin moves to its own once, never back.
    return old == new or (old == LEGACY_ORIGIN and new != LEGACY_ORIGIN)


def compare_sizes(old: Checkpoint, new: Checkpoint) -> HistoryCheck | None:
    """The answer when no proof is needed (another origin, a smaller tree, the same size);
    ``None`` when ``new`` is larger and only a consistency proof can tell."""
    if not _origins_agree(old.origin, new.origin):
        return HistoryCheck(
            Verdict.ORIGIN_CHANGED,
            old.size,
            new.size,
            f"the new checkpoint names the log {new.origin!r}, the earlier one {old.origin!r}",
        )
    if new.size < old.size:
        return HistoryCheck(
            Verdict.ROLLBACK,
            old.size,
            new.size,
            f"rollback: the new checkpoint is at size {new.size}, smaller than the {old.size} "
            f"entries already seen; entries {new.size}..{old.size - 1} are gone (the log was "
            "truncated or rolled back)",
        )
    if new.size == old.size:
        if new.root == old.root:
            return HistoryCheck(
                Verdict.SAME, old.size, new.size, f"the same tree at size {new.size}"
            )
        return HistoryCheck(
            Verdict.FORK,
            old.size,
            new.size,
            f"fork: two checkpoints at size {new.size} with different roots, both signed by "
            "this key: the log shows two different histories",
        )
    return None


def check_extension(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> HistoryCheck:
    """Does ``new`` extend ``old``? Both must already be verified (signature and origin);
    ``proof`` is the RFC 6962 consistency proof from ``old.size`` to ``new.size``."""
    settled = compare_sizes(old, new)
    if settled is not None:
        return settled
    if verify_consistency(old.size, new.size, old.root, new.root, proof):
        return HistoryCheck(
            Verdict.EXTENDS,
            old.size,
            new.size,
            f"the tree at size {new.size} extends the one at size {old.size}",
        )
    return HistoryCheck(
        Verdict.FORK,
        old.size,
        new.size,
        f"fork: the tree at size {new.size} does not extend the one at size {old.size} (the "
        "consistency proof does not verify): its first entries are not the ones seen before",
    )


def parse_proof(answer: dict[str, Any], old_size: int, new_size: int) -> list[bytes]:
    """The hashes of a consistency answer (``GET /v1/audit/consistency``, ``guard audit
    consistency --json``), checked to be the proof between exactly these sizes."""
    sizes = (answer.get("old_size"), answer.get("new_size"))
    if sizes != (old_size, new_size):
        raise InvalidInput(
            f"the consistency proof is from size {sizes[0]} to {sizes[1]}; "
            f"one from {old_size} to {new_size} is needed"
        )
    steps = answer.get("proof")
    if not isinstance(steps, list) or not all(isinstance(step, str) for step in steps):
        raise InvalidInput("a consistency proof is a list of hex hashes ('proof')")
    try:
        return [bytes.fromhex(step) for step in steps]
    except ValueError as exc:
        raise InvalidInput(f"the consistency proof holds a hash that is not hex: {exc}") from exc


def check_consistency_answer(
    old: Checkpoint, answer: dict[str, Any], verifier: CheckpointVerifier
) -> HistoryCheck:
    """Offline check of the service's consistency answer against a checkpoint held earlier
    (``old``, already verified): the answer's checkpoint must be signed by ``verifier`` and its
    tree must extend ``old``'s by the answer's proof."""
    note = answer.get("checkpoint")
    if not isinstance(note, str):
        raise InvalidInput("the consistency answer carries no signed 'checkpoint'")
    new = verifier.verify(note)
    settled = compare_sizes(old, new)
    if settled is not None:
        return settled
    return check_extension(old, new, parse_proof(answer, old.size, new.size))


def checkpoint_note(text: str) -> str:
    """The signed note in ``text``: the note itself (``guard audit checkpoint``, a witness's
    state) or a JSON object carrying it as ``checkpoint`` (``--json``, the API's answers)."""
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"neither a signed checkpoint nor JSON: {exc.msg}") from exc
    note = data.get("checkpoint") if isinstance(data, dict) else None
    if not isinstance(note, str):
        raise InvalidInput("the JSON carries no signed 'checkpoint'")
    return note
