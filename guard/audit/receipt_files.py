"""Check a downloaded receipts file offline: the console's ``receipt.json`` (one decision and
its releases) or ``receipts.json`` (a subject report's or an erasure certificate's entries).

The console also checks these in the browser, but with scripts the audited server serves: a
server that lies could serve a script that lies too. This check runs the auditor's own copy of
the guard against a key they hold (``guard audit verify-receipts FILE --key KEY``): each
entry's stored text must hash to its leaf, its inclusion proof must reach the root of a
checkpoint signed by that key, and every entry of one file must be proven against the same
checkpoint. What each proven entry says is then read from the proven bytes, not from a page.

>>> report = check_receipt_file(json.loads(text), verifier)      # doctest: +SKIP
>>> report.ok, [e.index for e in report.entries]                  # doctest: +SKIP
(True, [118, 131])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from guard.audit.checkpoint import Checkpoint, CheckpointVerifier, verifier_key
from guard.audit.receipts import Receipt, verify_receipt
from guard.errors import InvalidInput


@dataclass(frozen=True)
class ProvenEntry:
    """One entry of the file: whether it is proven, and if so what its proven bytes say."""

    index: int | None
    ok: bool
    problem: str | None
    entry: dict[str, Any] | None
    """The entry parsed from the bytes that hashed to the proven leaf (``None`` unless ok)."""


@dataclass(frozen=True)
class ReceiptFileReport:
    entries: tuple[ProvenEntry, ...]
    checkpoint: Checkpoint | None
    """The one checkpoint every entry is proven against (``None`` when none verified)."""
    problems: tuple[str, ...]
    """What is wrong with the file as a whole (more than one checkpoint, no entries)."""
    served_key_differs: bool
    """Whether the verifier key the file carries (the server's word) is not the pinned key the
    check used."""

    @property
    def ok(self) -> bool:
        return not self.problems and all(e.ok for e in self.entries)


def _items(document: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    """``(index as listed, entry_text, receipt)`` of every entry the file carries."""
    if "entries" in document:
        listed = document["entries"]
        if not isinstance(listed, list):
            raise InvalidInput("'entries' is not a list")
        return [
            (item.get("index"), item.get("entry_text"), item.get("receipt"))
            if isinstance(item, dict)
            else (None, None, None)
            for item in listed
        ]
    if "entry_text" in document:  # the console's receipt.json: a decision, then its releases
        releases = document.get("releases") or []
        if not isinstance(releases, list):
            raise InvalidInput("'releases' is not a list")
        return [(None, document.get("entry_text"), document.get("receipt"))] + [
            (r.get("index"), r.get("entry_text"), r.get("receipt"))
            if isinstance(r, dict)
            else (None, None, None)
            for r in releases
        ]
    raise InvalidInput(
        "not a receipts file: it has neither 'entries' (receipts.json) nor 'entry_text' "
        "(receipt.json)"
    )


def _receipt(data: Any) -> Receipt:
    if not isinstance(data, dict):
        raise InvalidInput("the receipt is not an object")
    try:
        proof = data["inclusion_proof"]
        receipt = Receipt(
            leaf_index=data["leaf_index"],
            leaf_hash=data["leaf_hash"],
            checkpoint=data["checkpoint"],
            inclusion_proof=tuple(proof),
        )
    except (KeyError, TypeError) as exc:
        raise InvalidInput(f"the receipt lacks or mangles {exc}") from exc
    fields_ok = (
        type(receipt.leaf_index) is int
        and isinstance(receipt.leaf_hash, str)
        and isinstance(receipt.checkpoint, str)
        and all(isinstance(step, str) for step in receipt.inclusion_proof)
    )
    if not fields_ok:
        raise InvalidInput("a receipt field has the wrong type")
    return receipt


def _proven(listed: Any, text: Any, data: Any, verifier: CheckpointVerifier) -> ProvenEntry:
    def refused(why: str, index: int | None = None) -> ProvenEntry:
        return ProvenEntry(index, False, why, None)

    try:
        receipt = _receipt(data)
    except InvalidInput as exc:
        return refused(exc.message, listed if type(listed) is int else None)
    index = receipt.leaf_index
    if listed is not None and (type(listed) is not int or listed != index):
        return refused(f"listed as entry {listed!r} but its receipt proves entry {index}", index)
    if not isinstance(text, str):
        return refused("no entry text", index)
    try:
        stored = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no stored entry can be such text
        return refused("the entry text is not valid Unicode", index)
    if not verify_receipt(receipt, verifier, stored):
        return refused(
            "not proven: the checkpoint is not signed by the pinned key, the text does not "
            "hash to the leaf, or the proof does not reach the root",
            index,
        )
    try:
        entry = json.loads(text)
    except ValueError:
        return refused("the proven text is not JSON", index)
    if not isinstance(entry, dict):
        return refused("the proven text is not a JSON object", index)
    return ProvenEntry(index, True, None, entry)


def check_receipt_file(document: Any, verifier: CheckpointVerifier) -> ReceiptFileReport:
    """Check every entry of a receipts file with ``verifier`` (the pinned key); never raises
    for a wrong proof (the report says what failed), only :class:`InvalidInput` for a file
    that is not a receipts file at all."""
    if not isinstance(document, dict):
        raise InvalidInput("a receipts file is a JSON object")
    items = _items(document)
    entries = tuple(_proven(listed, text, data, verifier) for listed, text, data in items)
    notes = {
        data["checkpoint"]
        for (_, _, data), proven in zip(items, entries, strict=True)
        if proven.ok and isinstance(data, dict)
    }
    problems = []
    if not items:
        problems.append("the file carries no entries")
    indices = [e.index for e in entries if e.index is not None]
    if len(set(indices)) != len(indices):
        problems.append("an entry is listed more than once")
    if len(notes) > 1:
        problems.append(
            f"the entries are proven against {len(notes)} different checkpoints: one file "
            "must be one view of the log"
        )
    checkpoint = verifier.verify(notes.pop()) if len(notes) == 1 else None
    served = document.get("verifier_key")
    pinned = verifier_key(verifier.name, verifier.key)
    differs = served is not None and (not isinstance(served, str) or served.strip() != pinned)
    return ReceiptFileReport(entries, checkpoint, tuple(problems), differs)
