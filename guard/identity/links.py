"""Public-figure links: an operator's verified statement that a subject is a blocklisted figure.

Only the operator links (the API route and the CLI command are operator-only); a link records
who, when and the SHA-256 of the verification document, each link and unlink is audited in its
own transaction, and unlinking deletes the subject's templates of the figure's face (they were
enrollable only while linked, see :mod:`guard.identity.enrollment`).
"""

from __future__ import annotations

from sqlalchemy import delete, select

from guard.db import Database
from guard.errors import Conflict
from guard.identity.blocklist import PublicFigure
from guard.identity.enrollment import EnrollmentScreen
from guard.identity.models import FaceTemplateRow
from guard.identity.records import (
    ChangeHook,
    RegistryChange,
    Subject,
    subject_of,
    subject_row,
    template_count,
    utc_now,
    validate_sha256,
)
from guard.identity.template_index import TemplateIndex, open_template
from guard.secrets import TemplateCipher


class PublicFigureLinks:
    def __init__(
        self,
        db: Database,
        cipher: TemplateCipher,
        screen: EnrollmentScreen,
        templates: TemplateIndex,
        changed: ChangeHook,
        *,
        engine_name: str,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._screen = screen
        self._templates = templates
        self._changed = changed
        self.engine_name = engine_name

    def link(
        self, subject_id: str, figure: PublicFigure, *, linked_by: str, evidence_sha256: str
    ) -> Subject:
        """Record an operator's verified statement that ``subject_id`` is the blocklisted
        ``figure`` (who, when, the SHA-256 of the verification document), audited. The figure's
        face then still needs the subject's own grant; policies may require more."""
        evidence = validate_sha256(evidence_sha256)
        with self._db.transaction() as session:
            row = subject_row(session, subject_id)
            if row.public_figure_id is not None:
                raise Conflict(
                    f"subject {subject_id} is already linked to {row.public_figure_id!r}; "
                    "unlink it first"
                )
            row.public_figure_id = figure.id
            row.public_figure_linked_by = linked_by
            row.public_figure_linked_at = utc_now()
            row.public_figure_link_evidence = evidence
            change = RegistryChange(
                "public_figure_linked",
                row.tenant,
                subject_id,
                evidence_sha256=evidence,
                figure_id=figure.id,
                actor=linked_by,
            )
            self._changed(session, change)
            return subject_of(row, template_count(session, subject_id))

    def unlink(self, subject_id: str, *, unlinked_by: str) -> Subject:
        """Remove a subject's public-figure link (audited): the figure's face is blocked again,
        and the subject's templates of that face (enrollable only while linked) are deleted."""
        with self._templates.change() as templates, self._db.transaction() as session:
            row = subject_row(session, subject_id)
            if row.public_figure_id is None:
                raise Conflict(f"subject {subject_id} is not linked to a public figure")
            figure = row.public_figure_id
            stored = session.execute(
                select(FaceTemplateRow.id, FaceTemplateRow.embedding_ciphertext).where(
                    FaceTemplateRow.subject_id == subject_id,
                    FaceTemplateRow.engine == self.engine_name,
                )
            ).all()
            embeddings = [open_template(self._cipher, c) for _, c in stored]
            matching = self._screen.matching(embeddings, figure) if embeddings else []
            removed = [
                template_id for (template_id, _), hit in zip(stored, matching, strict=True) if hit
            ]
            if removed:
                session.execute(delete(FaceTemplateRow).where(FaceTemplateRow.id.in_(removed)))
                templates.bump(session)
                templates.remove(removed)
            row.public_figure_id = None
            row.public_figure_linked_by = None
            row.public_figure_linked_at = None
            row.public_figure_link_evidence = None
            change = RegistryChange(
                "public_figure_unlinked",
                row.tenant,
                subject_id,
                count=len(removed),
                figure_id=figure,
                actor=unlinked_by,
            )
            self._changed(session, change)
            return subject_of(row, template_count(session, subject_id))
