"""The consent registry: subjects, their encrypted face templates, consent grants and erasure.

    registry = ConsentRegistry(db, cipher, hasher, engine_name="dlib", dimension=128,
                               screen=EnrollmentScreen(rules, blocklists.current))
    alice = registry.create_subject(tenant="acme", display_name="Alice")
    registry.enroll(alice.id, faces)
    registry.grant(alice.id, grantee="acme/app", scopes=["relight"], evidence_sha256=digest)

Face templates live encrypted in the database; an in-memory FAISS index over the decrypted
templates answers matches. A version counter in ``registry_state``, bumped in the same transaction
as every template change, tells each process when its index is stale, so several processes stay
in sync with one database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from guard.db import Database
from guard.errors import Conflict, InvalidInput, NotFound
from guard.faces import Face
from guard.identity.confirmation import ConsentConfirmations
from guard.identity.consent_requests import ConsentRequests
from guard.identity.enrollment import EnrollmentScreen
from guard.identity.links import PublicFigureLinks
from guard.identity.management_links import ManagementLinks
from guard.identity.models import (
    ConsentGrantRow,
    ErasureRow,
    FaceTemplateRow,
    RegistryStateRow,
    SubjectRow,
)
from guard.identity.records import (
    ChangeHook,
    ConsentGrant,
    Erasure,
    RegistryChange,
    Subject,
    SubjectCandidate,
    grant_of,
    subject_of,
    subject_row,
    template_count,
    utc_now,
    validate_sha256,
)
from guard.identity.template_index import TemplateIndex, seal_template
from guard.identity.tenancy import check_requester, check_tenant
from guard.secrets import KeyedHasher, TemplateCipher


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class ConsentRegistry:
    """Subjects, templates and grants in the database; matching through a synced FAISS index."""

    def __init__(
        self,
        db: Database,
        cipher: TemplateCipher,
        hasher: KeyedHasher,
        *,
        engine_name: str,
        dimension: int,
        screen: EnrollmentScreen,
        on_change: ChangeHook | None = None,
    ) -> None:
        self._on_change = on_change
        self._screen = screen
        self._db = db
        self._cipher = cipher
        self._hasher = hasher
        self.engine_name = engine_name
        self.dimension = dimension
        self._templates = TemplateIndex(db, cipher, engine_name=engine_name, dimension=dimension)
        self.confirmations = ConsentConfirmations(db, hasher, self._changed)
        """Person-confirmed consent: tokens the person redeems to confirm a grant."""
        self.public_figures = PublicFigureLinks(
            db, cipher, screen, self._templates, self._changed, engine_name=engine_name
        )
        """The operator's verified links between subjects and blocklisted figures."""
        self.management_links = ManagementLinks(db, hasher, self._changed)
        """The person's links to their own page."""
        self.consent_requests = ConsentRequests(db, hasher, self._changed, self.management_links)
        """Requests the person answers on their own page (issue 19)."""

    # subjects ------------------------------------------------------------------------------

    def create_subject(
        self,
        tenant: str,
        *,
        display_name: str | None = None,
    ) -> Subject:
        """Register a person in ``tenant``. Only an operator can then link them to a public
        figure (``public_figures.link``)."""
        check_tenant(tenant)
        row = SubjectRow(
            id=_new_id("sub"),
            tenant=tenant,
            display_name=display_name,
            created_at=utc_now(),
        )
        with self._db.transaction() as session:
            session.add(row)
            self._changed(session, RegistryChange("subject_created", tenant, row.id))
        return subject_of(row, 0)

    def _changed(self, session: Session, change: RegistryChange) -> None:
        if self._on_change is not None:
            self._on_change(session, change)

    def subject_ref(self, subject_id: str, tenant: str | None = None) -> str:
        """The keyed reference the audit log knows ``subject_id`` by (made with its tenant's
        key, :meth:`KeyedHasher.for_tenant`): a subject access request looks its entries up
        with it (``guard audit subject``). ``tenant`` defaults to the subject's own
        (:meth:`subject_tenant`)."""
        tenant = tenant if tenant is not None else self.subject_tenant(subject_id)
        return self._hasher.for_tenant(tenant).ref("subject", subject_id)

    def template_refs(self, template_ids: Sequence[int], tenant: str) -> list[str]:
        """What a tenant is told its enrolled templates are called: keyed with its own key,
        never the row ids, which count every tenant's enrolments (two of them would tell a
        tenant how many faces others enrolled in between)."""
        hasher = self._hasher.for_tenant(tenant)
        return [f"tpl_{hasher.ref('template', str(i))[:24]}" for i in template_ids]

    def subject_tenant(self, subject_id: str) -> str:
        """The tenant of a subject, or of an erased one (its erasure record, found by
        recomputing the subject's reference under each tenant that erased someone)."""
        with self._db.transaction() as session:
            tenant = session.scalar(select(SubjectRow.tenant).where(SubjectRow.id == subject_id))
            if tenant is not None:
                return str(tenant)
            tenants = session.scalars(select(ErasureRow.tenant).distinct()).all()
            refs = {self._hasher.for_tenant(t).ref("subject", subject_id): t for t in tenants}
            erased = session.scalars(
                select(ErasureRow.subject_ref).where(ErasureRow.subject_ref.in_(refs)).limit(1)
            ).first()
        if erased is None:
            raise NotFound(f"no subject {subject_id}")
        return refs[erased]

    def get_subject(self, subject_id: str) -> Subject:
        with self._db.transaction() as session:
            row = session.get(SubjectRow, subject_id)
            if row is None:
                raise NotFound(f"no subject {subject_id}")
            return subject_of(row, template_count(session, subject_id))

    def list_subjects(
        self, tenant: str | None = None, *, limit: int | None = None
    ) -> list[Subject]:
        """Subjects (a tenant's, with ``tenant``), oldest first, at most ``limit``."""
        query = select(SubjectRow).order_by(SubjectRow.created_at, SubjectRow.id).limit(limit)
        counting = (
            select(FaceTemplateRow.subject_id, func.count())
            .join(SubjectRow, SubjectRow.id == FaceTemplateRow.subject_id)
            .group_by(FaceTemplateRow.subject_id)
        )
        if tenant is not None:
            # Templates are counted for this tenant's subjects only: what other tenants
            # hold costs this tenant's listing nothing.
            query = query.where(SubjectRow.tenant == tenant)
            counting = counting.where(SubjectRow.tenant == tenant)
        with self._db.transaction() as session:
            counts = dict(session.execute(counting).all())
            return [subject_of(r, int(counts.get(r.id, 0))) for r in session.scalars(query)]

    def named_subjects(self, tenant: str) -> list[tuple[str, str]]:
        """``(subject_id, display_name)`` of the tenant's subjects that have a display name
        (prompt screening looks for them)."""
        with self._db.transaction() as session:
            rows = session.execute(
                select(SubjectRow.id, SubjectRow.display_name)
                .where(SubjectRow.tenant == tenant, SubjectRow.display_name.is_not(None))
                .order_by(SubjectRow.id)
            ).all()
            return [(str(i), str(name)) for i, name in rows if str(name).strip()]

    # templates -----------------------------------------------------------------------------

    def enroll(self, subject_id: str, faces: Sequence[Face]) -> list[int]:
        """Store one encrypted template per face; returns the template ids.

        Each face is screened first (:mod:`guard.identity.enrollment`): a public figure's face,
        another subject's of the same tenant, or one too small or faint is refused with
        :class:`~guard.errors.EnrollmentRefused` and nothing is stored."""
        if not faces:
            raise InvalidInput("no face to enroll: the photo must show the subject's face")
        for face in faces:
            if face.engine != self.engine_name or face.embedding.shape != (self.dimension,):
                raise InvalidInput(
                    f"face from engine {face.engine!r} cannot be enrolled in a registry of "
                    f"{self.engine_name!r} templates"
                )
        now = utc_now()
        with self._templates.change() as change, self._db.transaction() as session:
            # Enrollments take turns, across processes (a no-op write on the registry's state
            # row: a row lock on PostgreSQL, the write lock on SQLite), so two concurrent ones
            # cannot both pass the screen with the same person, nor race a link or unlink; the
            # screen then reads the subject as it is inside this transaction.
            session.execute(
                update(RegistryStateRow)
                .where(RegistryStateRow.id == 1)
                .values(version=RegistryStateRow.version)
            )
            subject = subject_row(session, subject_id)
            count = template_count(session, subject_id)
            self._screen.check(subject_of(subject, count), faces, self._same_tenant_matches)
            rows = [
                FaceTemplateRow(
                    subject_id=subject_id,
                    engine=self.engine_name,
                    dimension=self.dimension,
                    embedding_ciphertext=seal_template(self._cipher, face.embedding),
                    created_at=now,
                )
                for face in faces
            ]
            session.add_all(rows)
            session.flush()
            ids = [row.id for row in rows]
            change.bump(session)
            change.add(ids, [face.embedding for face in faces], subject_id, subject.tenant)
            self._changed(
                session,
                RegistryChange("templates_enrolled", subject.tenant, subject_id, count=len(ids)),
            )
        return ids

    def unenroll(self, subject_id: str, template_ids: Sequence[int]) -> int:
        """Delete ``template_ids`` of ``subject_id`` (DB and index; audited as
        ``templates_removed``): undoes an enrollment whose purpose failed (a consent page's
        photo enrolled, then the request was declined meanwhile). Returns how many went."""
        wanted = list(template_ids)
        if not wanted:
            return 0
        with self._templates.change() as change, self._db.transaction() as session:
            subject = session.get(SubjectRow, subject_id)
            if subject is None:
                return 0
            found = list(
                session.scalars(
                    select(FaceTemplateRow.id).where(
                        FaceTemplateRow.subject_id == subject_id, FaceTemplateRow.id.in_(wanted)
                    )
                )
            )
            if not found:
                return 0
            session.execute(delete(FaceTemplateRow).where(FaceTemplateRow.id.in_(found)))
            change.bump(session)
            change.remove(found)
            self._changed(
                session,
                RegistryChange("templates_removed", subject.tenant, subject_id, count=len(found)),
            )
        return len(found)

    def template_ids(self, subject_id: str) -> list[int]:
        with self._db.transaction() as session:
            return list(
                session.scalars(
                    select(FaceTemplateRow.id)
                    .where(FaceTemplateRow.subject_id == subject_id)
                    .order_by(FaceTemplateRow.id)
                )
            )

    def indexed_template_ids(self) -> set[int]:
        """Template ids in this process's index (after syncing with the database)."""
        return self._templates.ids()

    def match(
        self, embeddings: Iterable[np.ndarray], *, tenant: str | None = None
    ) -> list[list[SubjectCandidate]]:
        """For each embedding, the enrolled subjects most similar to it, best first; with
        ``tenant``, only that tenant's subjects (only its templates are searched, so what other
        tenants enrolled changes neither the answer nor the work)."""
        return self._templates.match(
            [np.asarray(e, dtype=np.float32) for e in embeddings], tenant=tenant
        )

    def _same_tenant_matches(
        self, subject: Subject, faces: Sequence[Face]
    ) -> list[list[tuple[str, float]]]:
        """For each face, the subjects of ``subject``'s tenant most similar to it (only that
        tenant's templates are searched: another tenant's copies cannot crowd them out)."""
        hits = self.match([face.embedding for face in faces], tenant=subject.tenant)
        return [[(c.subject_id, c.similarity) for c in candidates] for candidates in hits]

    # grants --------------------------------------------------------------------------------

    def grant(
        self,
        subject_id: str,
        *,
        grantee: str,
        scopes: Sequence[str],
        evidence_sha256: str,
        not_before: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> ConsentGrant:
        """Record that ``subject_id`` allows ``grantee`` the operations in ``scopes``.

        Refused (:class:`Conflict`, nothing stored or audited) when the person withdrew one of
        these scopes from ``grantee`` on their own page and has not confirmed it again since:
        the person's withdrawal binds the integrator, so only a new consent request the person
        accepts grants it again."""
        clean_scopes = sorted({s.strip() for s in scopes if s.strip()})
        if not clean_scopes:
            raise InvalidInput("a grant needs at least one scope (operation name)")
        if not grantee.strip():
            raise InvalidInput("grantee must not be empty")
        start = not_before or utc_now()
        if expires_at is not None and expires_at <= start:
            raise InvalidInput("expires_at must be after not_before")
        row = ConsentGrantRow(
            id=_new_id("grt"),
            subject_id=subject_id,
            grantee=grantee,
            scopes=clean_scopes,
            not_before=start,
            expires_at=expires_at,
            revoked_at=None,
            evidence_sha256=validate_sha256(evidence_sha256),
            created_at=utc_now(),
        )
        with self._db.transaction() as session:
            subject = session.get(SubjectRow, subject_id)
            if subject is None:
                raise NotFound(f"no subject {subject_id}")
            check_requester(grantee, subject.tenant)
            withdrawn = self._withdrawn_by_person(session, subject_id, grantee, clean_scopes)
            if withdrawn:
                raise Conflict(
                    f"the person withdrew consent for {', '.join(withdrawn)} from {grantee} on "
                    "their own page; only the person can grant it again: send them a new "
                    "consent request (POST /v1/consent-requests)",
                    code="consent_withdrawn_by_person",
                )
            session.add(row)
            change = RegistryChange(
                "consent_granted",
                subject.tenant,
                subject_id,
                grant_id=row.id,
                grantee=grantee,
                scopes=tuple(clean_scopes),
                evidence_sha256=row.evidence_sha256,
            )
            self._changed(session, change)
        return grant_of(row)

    @staticmethod
    def _withdrawn_by_person(
        session: Session, subject_id: str, grantee: str, scopes: Sequence[str]
    ) -> list[str]:
        """The scopes of ``scopes`` whose latest act of the person for ``grantee`` is a
        withdrawal (a later confirmation, by a consent request or a confirmation link, undoes
        it)."""
        rows = session.scalars(
            select(ConsentGrantRow).where(
                ConsentGrantRow.subject_id == subject_id, ConsentGrantRow.grantee == grantee
            )
        ).all()
        withdrawn = []
        for scope in scopes:
            covering = [r for r in rows if scope in r.scopes]
            last_withdrawal = max(
                (r.revoked_at for r in covering if r.withdrawn_by_person and r.revoked_at),
                default=None,
            )
            last_confirmation = max(
                (r.confirmed_at for r in covering if r.confirmed_at is not None), default=None
            )
            if last_withdrawal is not None and (
                last_confirmation is None or last_confirmation <= last_withdrawal
            ):
                withdrawn.append(scope)
        return withdrawn

    def revoke(
        self, grant_id: str, *, at: datetime | None = None, by_person: bool = False
    ) -> ConsentGrant:
        """Revoke now (or ``at``). ``by_person``: the person withdrew it on their own page; the
        audit entry says so (``consent_withdrawn`` instead of ``consent_revoked``)."""
        with self._db.transaction() as session:
            row = session.get(ConsentGrantRow, grant_id)
            if row is None:
                raise NotFound(f"no consent grant {grant_id}")
            if row.revoked_at is not None:
                raise Conflict(f"grant {grant_id} was already revoked at {row.revoked_at}")
            row.revoked_at = at or utc_now()
            row.withdrawn_by_person = by_person
            subject = session.get(SubjectRow, row.subject_id)
            tenant = subject.tenant if subject is not None else ""
            change = RegistryChange(
                "consent_withdrawn" if by_person else "consent_revoked",
                tenant,
                row.subject_id,
                grant_id=row.id,
                grantee=row.grantee,
            )
            self._changed(session, change)
            return grant_of(row)

    def get_grant(self, grant_id: str) -> ConsentGrant:
        with self._db.transaction() as session:
            row = session.get(ConsentGrantRow, grant_id)
            if row is None:
                raise NotFound(f"no consent grant {grant_id}")
            return grant_of(row)

    def grants_for(self, subject_id: str) -> list[ConsentGrant]:
        return self.list_grants(subject_id=subject_id)

    def list_grants(
        self, *, subject_id: str | None = None, grantee: str | None = None
    ) -> list[ConsentGrant]:
        with self._db.transaction() as session:
            query = select(ConsentGrantRow).order_by(ConsentGrantRow.created_at, ConsentGrantRow.id)
            if subject_id is not None:
                query = query.where(ConsentGrantRow.subject_id == subject_id)
            if grantee is not None:
                query = query.where(ConsentGrantRow.grantee == grantee)
            return [grant_of(r) for r in session.scalars(query)]

    # erasure -------------------------------------------------------------------------------

    def erase(self, subject_id: str, *, by_person: bool = False) -> Erasure:
        """Delete the subject, their templates (DB and index) and grants; keep a keyed-hash
        record of the erasure for the audit trail. ``by_person``: the person erased themselves
        on their own page (audited as ``subject_erased_by_person``). Their consent requests and
        management links go with the subject (foreign keys, ``ON DELETE CASCADE``)."""
        with self._templates.change() as change, self._db.transaction() as session:
            subject = session.get(SubjectRow, subject_id)
            if subject is None:
                raise NotFound(f"no subject {subject_id}")
            template_ids = list(
                session.scalars(
                    select(FaceTemplateRow.id).where(FaceTemplateRow.subject_id == subject_id)
                )
            )
            session.execute(delete(FaceTemplateRow).where(FaceTemplateRow.subject_id == subject_id))
            grants = session.execute(
                delete(ConsentGrantRow).where(ConsentGrantRow.subject_id == subject_id)
            )
            subject_ref = self.subject_ref(subject_id, subject.tenant)
            session.add(
                ErasureRow(subject_ref=subject_ref, tenant=subject.tenant, erased_at=utc_now())
            )
            session.delete(subject)
            change.bump(session)
            change.remove(template_ids)
            change_record = RegistryChange(
                "subject_erased_by_person" if by_person else "subject_erased",
                subject.tenant,
                subject_id,
                count=len(template_ids),
            )
            self._changed(session, change_record)
        return Erasure(
            subject_ref=subject_ref,
            templates_removed=len(template_ids),
            grants_removed=int(grants.rowcount),  # type: ignore[attr-defined]
        )
