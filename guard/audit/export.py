"""Export the log to JSON Lines and verify an export offline with only the public key.

An export has one line per entry, ``{"index", "entry", "leaf_hash", "checkpoint"}``, where
``checkpoint`` is the note signed at that entry's size if a batch of appends ended there, and
``null`` for the entries inside a batch (one checkpoint is signed per committed batch), then
``{"latest_checkpoint": note}``. Verification recomputes every leaf from the entry's canonical
JSON and the tree with a compact range, and checks every signed checkpoint against the
recomputed root at its size. An entry whose content no longer hashes to its recorded leaf is
named; an entry altered together with its leaf hash, deleted or moved shows at the next
checkpoint, which names the range since the previous one (one entry, where every append was its
own batch). What a file cannot show on its own (it is all signed) is that entries were dropped
from its end, or that it is another history under the same key: ``pinned``, a checkpoint seen
earlier, catches both (:mod:`guard.audit.history`).

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

from guard.audit.checkpoint import Checkpoint, CheckpointVerifier
from guard.audit.index import GLOBAL_TENANT, AuditIndexRow, entry_tenant
from guard.audit.log import AuditLog
from guard.audit.merkle import CompactRange, leaf_hash
from guard.audit.receipts import canonical_json
from guard.audit.tables import AuditCheckpointRow, AuditEntryRow
from guard.errors import InvalidInput

Progress = Callable[[int], None]


def export_log(log: AuditLog, out: Path, *, progress: Progress | None = None) -> int:
    """Write the whole log to ``out``; returns the number of entries written."""
    latest = log.checkpoint() if log.size() else None
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for lines in export_chunks(log):
            handle.writelines(lines)
            count += len(lines)
            if progress is not None:
                progress(len(lines))
        handle.write(closing_line(latest))
    return count


def closing_line(latest: str | None) -> str:
    """The line that ends an export: the latest checkpoint when it was made."""
    return json.dumps({"latest_checkpoint": latest}) + "\n"


def export_chunks(
    log: AuditLog, *, tenant: str | None = None, size: int | None = None, batch: int = 5000
) -> Iterator[list[str]]:
    """The export's entry lines, a query's batch at a time: the whole log, or with ``tenant``
    that tenant's entries and the global ones (found through the search index, each confirmed
    by the entry's own tenant: the index is a cache, never the authority), below ``size``."""
    start = 0
    while size is None or start < size:
        query = select(AuditEntryRow.idx, AuditEntryRow.entry, AuditEntryRow.leaf_hash).where(
            AuditEntryRow.idx >= start
        )
        if size is not None:
            query = query.where(AuditEntryRow.idx < size)
        if tenant is not None:
            query = query.join(AuditIndexRow, AuditIndexRow.idx == AuditEntryRow.idx).where(
                AuditIndexRow.tenant.in_((tenant, GLOBAL_TENANT))
            )
        with log.db.transaction() as session:
            rows = session.execute(query.order_by(AuditEntryRow.idx).limit(batch)).all()
            if not rows:
                return
            notes = dict(
                session.execute(
                    select(AuditCheckpointRow.size, AuditCheckpointRow.note).where(
                        AuditCheckpointRow.size.between(rows[0].idx + 1, rows[-1].idx + 1)
                    )
                ).all()
            )
        lines = []
        for idx, text, leaf in rows:
            entry = json.loads(text)
            if tenant is not None and entry_tenant(entry) not in (tenant, GLOBAL_TENANT):
                continue
            line = {
                "index": idx,
                "entry": entry,
                "leaf_hash": leaf,
                "checkpoint": notes.get(idx + 1),
            }
            lines.append(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")
        yield lines
        start = rows[-1].idx + 1


# Enough to find where an export went wrong; past this, problems are counted, not listed, and
# the file is still read to its end, so what is said about its closing checkpoint stays true.
LISTED_PROBLEMS = 20
_NO_LINE = object()  # no closing {"latest_checkpoint": …} line was read


@dataclass
class ExportVerification:
    """The outcome of :func:`verify_export`; ``problems`` are in file order (the first
    :data:`LISTED_PROBLEMS` about entries, then every one about the end of the file and the
    pinned checkpoint), ``unlisted`` counts the entry problems past the cap."""

    entries: int = 0
    checkpoints: int = 0
    first_bad_index: int | None = None
    problems: list[str] = field(default_factory=list)
    latest_size: int | None = None
    unlisted: int = 0
    pinned_size: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unlisted and self.latest_size == self.entries

    def fail(self, index: int | None, problem: str) -> None:
        """An entry's problem (listed up to the cap)."""
        if self.first_bad_index is None and index is not None:
            self.first_bad_index = index
        if len(self.problems) >= LISTED_PROBLEMS:
            self.unlisted += 1
        else:
            self.problems.append(problem)

    def conclude(self, index: int | None, problem: str) -> None:
        """A problem about the whole file, always listed."""
        if self.first_bad_index is None and index is not None:
            self.first_bad_index = index
        self.problems.append(problem)


def verify_export(
    path: Path,
    verifier: CheckpointVerifier,
    *,
    progress: Progress | None = None,
    pinned: Checkpoint | None = None,
) -> ExportVerification:
    """Check every entry and checkpoint of the export at ``path``. With ``pinned`` (a checkpoint
    seen earlier, already verified), also check that the export extends it: that the export
    reaches its size and that its first ``pinned.size`` entries hash to its root, so a
    truncated, rolled-back or forked export fails even if everything in it is signed."""
    report = ExportVerification(pinned_size=pinned.size if pinned else None)
    tree = _Recomputed()
    compact = tree.compact
    latest: object = _NO_LINE
    pinned_matched: bool | None = None
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            try:
                line: Any = json.loads(text)
            except json.JSONDecodeError as exc:
                report.fail(
                    report.entries,
                    f"line {number} is not JSON ({exc.msg}): the file is damaged or cut off",
                )
                continue
            if isinstance(line, dict) and "latest_checkpoint" in line:
                latest = line["latest_checkpoint"]
                continue
            _check_entry(line, report, tree, verifier)
            if pinned is not None and compact.size == pinned.size:
                pinned_matched = compact.root() == pinned.root
            if progress is not None:
                progress(1)
    if pinned is not None:
        _check_pinned(report, pinned, pinned_matched)
    _check_latest(report, compact, verifier, latest)
    return report


def _check_pinned(report: ExportVerification, pinned: Checkpoint, matched: bool | None) -> None:
    if pinned.size == 0:
        return
    if report.entries < pinned.size:
        report.conclude(
            report.entries,
            f"truncated or rolled back: the export has {report.entries} entries, the pinned "
            f"checkpoint covers {pinned.size}: entries {report.entries}..{pinned.size - 1} "
            "are missing",
        )
    elif not matched:
        report.conclude(
            None,
            f"fork: the export's first {pinned.size} entries do not hash to the pinned "
            f"checkpoint's root at size {pinned.size}: a different history under the same key "
            "(or entries before it were changed)",
        )


def _check_latest(
    report: ExportVerification,
    compact: CompactRange,
    verifier: CheckpointVerifier,
    latest: object,
) -> None:
    if not isinstance(latest, str):
        if report.entries == 0:
            report.conclude(None, "the export is empty: no entries and no checkpoint")
        elif latest is _NO_LINE:
            report.conclude(
                None,
                f"the export stops after entry {report.entries - 1} without its closing "
                "latest-checkpoint line: the file is cut short (truncated) or not a whole "
                "`guard audit export`",
            )
        else:
            report.conclude(None, "the closing latest-checkpoint line carries no checkpoint")
        return
    try:
        head = verifier.verify(latest)
    except InvalidInput as exc:
        report.conclude(None, f"latest checkpoint: {exc.message}")
        return
    report.latest_size = head.size
    if head.size > report.entries:
        report.conclude(
            report.entries,
            f"truncated: the latest checkpoint covers {head.size} entries, the file has "
            f"{report.entries}: entries {report.entries}..{head.size - 1} are missing",
        )
    elif head.size < report.entries:
        report.conclude(
            head.size,
            f"the file has {report.entries} entries, its latest checkpoint covers only "
            f"{head.size}: entries from {head.size} on are not covered by it",
        )
    elif head.root != compact.root():
        report.conclude(None, "the latest checkpoint's root does not match the entries")


@dataclass
class _Recomputed:
    """The tree recomputed from the export so far, and the size of the last signed checkpoint
    compared with it (what a mismatch at the next one can be narrowed down to)."""

    compact: CompactRange = field(default_factory=CompactRange)
    checked_size: int = 0


def _check_entry(
    line: Any,
    report: ExportVerification,
    tree: _Recomputed,
    verifier: CheckpointVerifier,
) -> None:
    compact = tree.compact
    expected = report.entries
    if not isinstance(line, dict) or "entry" not in line:
        report.fail(expected, f"entry {expected}: the line is not an export entry")
        return
    index = line.get("index")
    if index != expected:
        report.fail(expected, f"entry {expected}: missing or out of order (found index {index})")
    try:
        leaf = leaf_hash(canonical_json(line["entry"]))
    except (TypeError, ValueError):
        report.fail(expected, f"entry {expected}: its content is not canonical JSON")
        return
    if leaf.hex() != line.get("leaf_hash"):
        report.fail(expected, f"entry {expected}: its content does not hash to its recorded leaf")
    compact.append(leaf)
    report.entries += 1
    note = line.get("checkpoint")
    if note is None:
        return  # inside a batch: the checkpoint at the batch's end (or the latest) covers it
    if not isinstance(note, str):
        report.fail(expected, f"entry {expected}: its checkpoint is not a signed note")
        return
    try:
        checkpoint = verifier.verify(note)
    except InvalidInput as exc:
        report.fail(expected, f"entry {expected}: checkpoint {exc.message}")
        return
    report.checkpoints += 1
    since, tree.checked_size = tree.checked_size, compact.size
    if checkpoint.size != compact.size or checkpoint.root != compact.root():
        where = f"entry {expected}" if since == expected else f"entries {since}..{expected}"
        report.fail(
            since,
            f"{where}: the signed checkpoint at size {checkpoint.size} does not match "
            "the entries up to here (altered, deleted or reordered"
            + ("" if since == expected else f" since the checkpoint at size {since}")
            + ")",
        )
