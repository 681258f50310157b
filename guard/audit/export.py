"""Export the log to JSON Lines and verify an export offline with only the public key.

An export has one line per entry, ``{"index", "entry", "leaf_hash", "checkpoint"}`` (the
checkpoint signed right after that entry was appended), then ``{"latest_checkpoint": note}``.
Verification recomputes every leaf from the entry's canonical JSON and the tree with a compact
range, and checks every signed checkpoint against the recomputed root at its size. Because each
append has its own signed checkpoint, the first failure names the first altered, missing or
moved entry.

    >>> report = verify_export(Path("audit.jsonl"), CheckpointVerifier.from_key_string(vkey))
    >>> report.ok, report.first_bad_index                                 # doctest: +SKIP
    (False, 1207)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from guard.audit.checkpoint import CheckpointVerifier
from guard.audit.log import AuditCheckpointRow, AuditEntryRow, AuditLog, canonical_json
from guard.audit.merkle import CompactRange, leaf_hash
from guard.errors import InvalidInput

Progress = Callable[[int], None]


def export_log(log: AuditLog, out: Path, *, progress: Progress | None = None) -> int:
    """Write the whole log to ``out``; returns the number of entries written."""
    latest = log.checkpoint() if log.size() else None
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for row, note in _rows(log):
            line = {
                "index": row.idx,
                "entry": json.loads(row.entry),
                "leaf_hash": row.leaf_hash,
                "checkpoint": note,
            }
            handle.write(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
            if progress is not None:
                progress(1)
        handle.write(json.dumps({"latest_checkpoint": latest}) + "\n")
    return count


def _rows(log: AuditLog, batch: int = 5000) -> Iterator[tuple[AuditEntryRow, str | None]]:
    start = 0
    while True:
        with log.db.transaction() as session:
            rows = session.scalars(
                select(AuditEntryRow)
                .where(AuditEntryRow.idx >= start)
                .order_by(AuditEntryRow.idx)
                .limit(batch)
            ).all()
            if not rows:
                return
            sizes = [row.idx + 1 for row in rows]
            notes = dict(
                session.execute(
                    select(AuditCheckpointRow.size, AuditCheckpointRow.note).where(
                        AuditCheckpointRow.size.between(sizes[0], sizes[-1])
                    )
                ).all()
            )
        for row in rows:
            yield row, notes.get(row.idx + 1)
        start = rows[-1].idx + 1


@dataclass
class ExportVerification:
    """The outcome of :func:`verify_export`; ``problems`` are in file order."""

    entries: int = 0
    checkpoints: int = 0
    first_bad_index: int | None = None
    problems: list[str] = field(default_factory=list)
    latest_size: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.latest_size == self.entries

    def fail(self, index: int | None, problem: str) -> None:
        if self.first_bad_index is None and index is not None:
            self.first_bad_index = index
        self.problems.append(problem)


def verify_export(
    path: Path, verifier: CheckpointVerifier, *, progress: Progress | None = None
) -> ExportVerification:
    report = ExportVerification()
    compact = CompactRange()
    latest: str | None = None
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            line: dict[str, Any] = json.loads(text)
            if "latest_checkpoint" in line:
                latest = line["latest_checkpoint"]
                continue
            _check_entry(line, report, compact, verifier)
            if progress is not None:
                progress(1)
            if number > 0 and report.problems and len(report.problems) > 20:
                report.problems.append("… stopping after 20 problems")
                break
    if latest is None:
        report.fail(None, "the export has no latest checkpoint")
        return report
    try:
        head = verifier.verify(latest)
    except InvalidInput as exc:
        report.fail(None, f"latest checkpoint: {exc.message}")
        return report
    report.latest_size = head.size
    if head.size != report.entries:
        report.fail(
            None, f"the latest checkpoint covers {head.size} entries, the file has {report.entries}"
        )
    elif head.root != compact.root():
        report.fail(None, "the latest checkpoint's root does not match the entries")
    return report


def _check_entry(
    line: dict[str, Any],
    report: ExportVerification,
    compact: CompactRange,
    verifier: CheckpointVerifier,
) -> None:
    expected = report.entries
    index = line.get("index")
    if index != expected:
        report.fail(expected, f"entry {expected}: missing or out of order (found index {index})")
    leaf = leaf_hash(canonical_json(line["entry"]))
    if leaf.hex() != line.get("leaf_hash"):
        report.fail(expected, f"entry {expected}: its content does not hash to its recorded leaf")
    compact.append(leaf)
    report.entries += 1
    note = line.get("checkpoint")
    if note is None:
        report.fail(expected, f"entry {expected}: no checkpoint was signed after it")
        return
    try:
        checkpoint = verifier.verify(note)
    except InvalidInput as exc:
        report.fail(expected, f"entry {expected}: checkpoint {exc.message}")
        return
    report.checkpoints += 1
    if checkpoint.size != compact.size or checkpoint.root != compact.root():
        report.fail(
            expected,
            f"entry {expected}: the signed checkpoint at size {checkpoint.size} does not match "
            "the entries up to here (altered, deleted or reordered)",
        )
