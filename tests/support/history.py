"""A realistic seeded history for the compliance console's tests and benchmark.

:func:`seed_history` gives each tenant a consent registry made through the real registry API
(subjects with display names, two enrolled from real photos, grants with scopes and expiry, a
revoked and an expired grant, a declined consent request, a subject erased after decisions
referred to it), then ``decisions_per_tenant`` back-dated decisions spread over ``days`` days
(real :class:`~guard.policy.Decision` objects turned into entries by
:func:`~guard.audit.entries.decision_entry` and appended in bulk with
:func:`~guard.audit.batch.append_batch`), plus a few real checks of real photos over HTTP. It
returns what it made and the counts a page should show (:class:`SeededHistory`), computed from
the decisions it made, never read back from the search index the pages query.

:func:`bulk_decisions` is the same decision generator without a registry, fast, for
``bench/console.py``.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from guard import Guard
from guard.api import ApiKeyStore, Role
from guard.audit.batch import PendingEntry, append_batch
from guard.audit.entries import decision_entry
from guard.policy.decision import (
    Decision,
    EvidenceValue,
    FaceDecision,
    Reason,
    ReasonCode,
    RuleOutcome,
    Verdict,
)
from guard.samples import sample_bytes
from tests.support.live import LiveService, image_part, params
from tests.support.photos import ENROLL, crop

OLD_POLICY_VERSION = "2026-11-18.1"
"""The default policy's version before the current one: the older part of the history."""

CHANNELS = ("web", "mobile", "batch")
_CHANNEL_WEIGHTS = (50, 35, 15)
OPERATIONS = ("relight", "background", "restyle", "retouch", "generate")
_OPERATION_WEIGHTS = (30, 25, 20, 15, 10)
FIGURES = ("tom-hanks", "eileen-collins", "marie-curie")
IMAGE_SIZES = ((1024, 768), (1280, 886), (512, 512), (1920, 1080), (800, 1200))
_NAMES = (
    "Mara Lindqvist",
    "Jonah Pérez",
    "Ada Okafor",
    "Theo Brandt",
    "Sofia Rossi",
    "Kenji Watanabe",
    "Amara Nwosu",
    "Lukas Novak",
    "Priya Raman",
    "Elena García",
    "Owen Fitzgerald",
    "Hana Kowalczyk",
)
_EVIDENCE = hashlib.sha256(b"signed model release").hexdigest()


# --- what was made -------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededSubject:
    id: str
    display_name: str
    ref: str
    """The keyed reference the audit log knows the subject by (its tenant's key)."""
    enrolled: bool
    erased: bool = False


@dataclass(frozen=True)
class SeededGrant:
    id: str
    subject_id: str
    grantee: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    revoked: bool
    ref: str


@dataclass(frozen=True)
class ExpectedCounts:
    """What the tenant's decisions add up to (every count is of decisions; a decision with two
    reason codes counts once under each)."""

    total: int
    by_verdict: Mapping[str, int]
    by_reason: Mapping[str, int]
    by_operation: Mapping[str, int]
    by_requester: Mapping[str, int]
    """Keyed by requester id (``"<tenant>/web"``); ``SeededTenant.requester_refs`` maps each
    to the keyed reference the index holds."""
    by_policy_version: Mapping[str, int]
    by_stage: Mapping[str, int]
    by_day: Mapping[str, int]
    """Keyed by the UTC date, ``YYYY-MM-DD``."""
    by_subject: Mapping[str, int]
    """Decisions whose evidence names the subject (by subject id, erased one included)."""
    by_figure: Mapping[str, int]


@dataclass(frozen=True)
class SeededTenant:
    name: str
    auditor_token: str
    admin_token: str
    requesters: tuple[str, ...]
    requester_refs: Mapping[str, str]
    subjects: tuple[SeededSubject, ...]
    grants: tuple[SeededGrant, ...]
    erased_subject_id: str
    declined_request_id: str
    expected: ExpectedCounts
    real_decision_ids: tuple[str, ...]
    """Decisions made by real checks of real photos over HTTP (real face boxes)."""

    @property
    def display_names(self) -> dict[str, str]:
        return {s.id: s.display_name for s in self.subjects}


@dataclass(frozen=True)
class SeededHistory:
    tenants: tuple[SeededTenant, ...]
    since: datetime
    """The oldest a seeded decision can be (``now - days``)."""
    now: datetime
    policy_id: str
    policy_versions: tuple[str, str]
    """(older, current)."""

    def tenant(self, name: str) -> SeededTenant:
        for tenant in self.tenants:
            if tenant.name == name:
                return tenant
        raise KeyError(name)


# --- the decision generator ----------------------------------------------------------------


@dataclass
class _Tally:
    total: int = 0
    verdict: Counter[str] = field(default_factory=Counter)
    reason: Counter[str] = field(default_factory=Counter)
    operation: Counter[str] = field(default_factory=Counter)
    requester: Counter[str] = field(default_factory=Counter)
    policy_version: Counter[str] = field(default_factory=Counter)
    stage: Counter[str] = field(default_factory=Counter)
    day: Counter[str] = field(default_factory=Counter)
    subject: Counter[str] = field(default_factory=Counter)
    figure: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        *,
        verdict: str,
        reasons: Sequence[str],
        operation: str,
        requester: str,
        policy_version: str,
        stage: str,
        at: datetime,
        subjects: Sequence[str],
        figures: Sequence[str],
    ) -> None:
        self.total += 1
        self.verdict[verdict] += 1
        self.reason.update(set(reasons))
        self.operation[operation] += 1
        self.requester[requester] += 1
        self.policy_version[policy_version] += 1
        self.stage[stage] += 1
        self.day[at.astimezone(UTC).date().isoformat()] += 1
        self.subject.update(set(subjects))
        self.figure.update(set(figures))

    def add_decision(self, decision: Decision, operation: str, requester: str) -> None:
        self.add(
            verdict=decision.verdict.value,
            reasons=decision.reason_codes,
            operation=operation,
            requester=requester,
            policy_version=decision.policy_version,
            stage=decision.stage,
            at=decision.decided_at,
            subjects=_face_evidence(decision, "subject_id"),
            figures=_face_evidence(decision, "figure_id"),
        )

    def frozen(self) -> ExpectedCounts:
        return ExpectedCounts(
            total=self.total,
            by_verdict=dict(self.verdict),
            by_reason=dict(self.reason),
            by_operation=dict(self.operation),
            by_requester=dict(self.requester),
            by_policy_version=dict(self.policy_version),
            by_stage=dict(self.stage),
            by_day=dict(self.day),
            by_subject=dict(self.subject),
            by_figure=dict(self.figure),
        )


def _face_evidence(decision: Decision, key: str) -> list[str]:
    # What decision_entry turns into subject_refs / figure_ids: the faces' reasons only.
    return sorted(
        {
            str(r.evidence[key])
            for face in decision.faces
            for r in face.reasons
            if r.evidence.get(key) is not None
        }
    )


@dataclass(frozen=True)
class _Cast:
    """Who the generator may name: subject ids and their grants, by what the grant is."""

    active: tuple[tuple[str, str, tuple[str, ...]], ...]
    """(subject id, grant id, scopes) of grants in force."""
    expired: tuple[tuple[str, str], ...]
    revoked: tuple[tuple[str, str], ...]


# (scenario, weight)
_SCENARIOS = (
    ("no_faces", 14),
    ("consent_granted", 30),
    ("no_consent", 18),
    ("public_figure", 8),
    ("scope_not_granted", 6),
    ("consent_expired", 5),
    ("consent_revoked", 4),
    ("mixed", 4),
    ("nsfw_real_person", 3),
    ("prompt_names_public_figure", 2),
    ("identity_drift", 2),
    ("unavailable", 2),
    ("unknown_face_allowed", 2),
)
_SCENARIO_NAMES = tuple(name for name, _ in _SCENARIOS)
_SCENARIO_WEIGHTS = tuple(weight for _, weight in _SCENARIOS)


class _Generator:
    """Seeded decisions of one tenant: (decision, requester, operation)."""

    def __init__(
        self,
        *,
        tenant: str,
        cast: _Cast,
        policy_id: str,
        versions: tuple[str, str],
        now: datetime,
        days: int,
        seed: int | str,
    ) -> None:
        self.tenant = tenant
        self.cast = cast
        self.policy_id = policy_id
        self.versions = versions
        self.now = now
        self.span = days * 86_400.0
        # Decisions older than this were made under the older policy version.
        self.switch = now - timedelta(seconds=self.span * 0.4)
        self.rng = random.Random(f"{seed}:{tenant}")
        self.requesters = tuple(f"{tenant}/{c}" for c in CHANNELS)

    def _box(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        width, height = size
        side = self.rng.randint(max(24, min(size) // 12), max(48, min(size) // 3))
        x0 = self.rng.randint(0, width - side)
        y0 = self.rng.randint(0, height - side)
        return (x0, y0, x0 + side, y0 + side)

    def _face(
        self,
        index: int,
        size: tuple[int, int],
        kind: str,
        verdict: Verdict,
        code: ReasonCode,
        message: str,
        evidence: dict[str, EvidenceValue],
    ) -> FaceDecision:
        reason = Reason(code, message, {"face_index": index, **evidence})
        return FaceDecision(index, self._box(size), kind, verdict, (reason,))

    def _similar(self) -> dict[str, EvidenceValue]:
        return {"similarity": round(self.rng.uniform(0.62, 0.93), 3), "threshold": 0.55}

    def one(self) -> tuple[Decision, str, str]:
        rng = self.rng
        at = self.now - timedelta(seconds=rng.uniform(1.0, self.span - 1.0))
        version = self.versions[0] if at < self.switch else self.versions[1]
        requester = rng.choices(self.requesters, _CHANNEL_WEIGHTS)[0]
        operation = rng.choices(OPERATIONS, _OPERATION_WEIGHTS)[0]
        scenario = rng.choices(_SCENARIO_NAMES, _SCENARIO_WEIGHTS)[0]
        stage = (
            "output"
            if scenario in ("nsfw_real_person", "identity_drift")
            else ("output" if rng.random() < 0.12 else "input")
        )
        size: tuple[int, int] | None = rng.choice(IMAGE_SIZES)
        faces, extra, verdict, conditions, operation, size = self._scenario(
            scenario, size, operation
        )
        face_reasons = [r for f in faces for r in f.reasons]
        # Denying reasons first, as the policy orders them (the first names the denial).
        reasons = sorted(extra + face_reasons, key=lambda r: not r.denies)
        rules = tuple(
            RuleOutcome(
                f"rule-{r.code.value}",
                r.evidence.get("face_index"),  # type: ignore[arg-type]
                not r.denies,
                (r.code.value,),
            )
            for r in reasons
        )
        decision = Decision(
            verdict=verdict,
            reasons=tuple(reasons),
            policy_id=self.policy_id,
            policy_version=version,
            stage=stage,
            faces=tuple(faces),
            conditions=conditions,
            rules=rules,
            decision_id=f"dec_{uuid.uuid4().hex}",
            decided_at=at,
            image_size=size,
        )
        return decision, requester, operation

    def _consented(
        self,
        scenario: str,
        size: tuple[int, int],
        faces: list[FaceDecision],
        extra: list[Reason],
    ) -> tuple[Verdict, tuple[str, ...], str]:
        """A consented subject's face, alone (allowed), beside an unknown face, or in an
        output that is explicit or drifted (denied)."""
        rng = self.rng
        deny = Verdict.DENY
        subject_id, grant_id, scopes = rng.choice(self.cast.active)
        operation = rng.choice(scopes)
        level = "person_confirmed" if rng.random() < 0.3 else "attested"
        faces.append(
            self._face(
                0,
                size,
                "consented_subject",
                Verdict.ALLOW_WITH_CONDITIONS,
                ReasonCode.CONSENT_GRANTED,
                f"subject {subject_id} granted '{operation}' to this requester",
                {
                    "subject_id": subject_id,
                    **self._similar(),
                    "grant_id": grant_id,
                    "consent_level": level,
                },
            )
        )
        conditions: tuple[str, ...] = ("watermark_required",)
        verdict = Verdict.ALLOW_WITH_CONDITIONS
        if scenario == "mixed":
            faces.append(
                self._face(
                    1,
                    size,
                    "unknown",
                    deny,
                    ReasonCode.NO_CONSENT,
                    "no consent on record for this face",
                    {},
                )
            )
            verdict, conditions = deny, ()
        elif scenario == "nsfw_real_person":
            extra.append(
                Reason(
                    ReasonCode.NSFW_REAL_PERSON,
                    "explicit output of a real person",
                    {"score": round(rng.uniform(0.8, 0.99), 3)},
                )
            )
            verdict, conditions = deny, ()
        elif scenario == "identity_drift":
            extra.append(
                Reason(
                    ReasonCode.IDENTITY_DRIFT,
                    "the output's face is no longer the consented person",
                    {"face_index": 0, "similarity": round(rng.uniform(0.2, 0.45), 3)},
                )
            )
            verdict, conditions = deny, ()
        return verdict, conditions, operation

    def _scenario(
        self, scenario: str, size: tuple[int, int] | None, operation: str
    ) -> tuple[
        list[FaceDecision],
        list[Reason],
        Verdict,
        tuple[str, ...],
        str,
        tuple[int, int] | None,
    ]:
        """The faces, request-level reasons, verdict and conditions of one ``scenario`` (and
        the operation and image size it settles on)."""
        rng = self.rng
        faces: list[FaceDecision] = []
        extra: list[Reason] = []  # request-level reasons
        conditions: tuple[str, ...] = ()
        deny, allow = Verdict.DENY, Verdict.ALLOW
        cast = self.cast
        face_size = size or IMAGE_SIZES[0]

        if scenario == "no_faces":
            verdict = allow
            extra.append(Reason(ReasonCode.NO_FACES, "no faces in the image"))
            conditions = ("watermark_required",) if rng.random() < 0.5 else ()
            verdict = Verdict.ALLOW_WITH_CONDITIONS if conditions else allow
        elif scenario in ("consent_granted", "mixed", "nsfw_real_person", "identity_drift"):
            verdict, conditions, operation = self._consented(scenario, face_size, faces, extra)
        elif scenario == "no_consent":
            for i in range(rng.choice((1, 1, 1, 2, 3))):
                faces.append(
                    self._face(
                        i,
                        face_size,
                        "unknown",
                        deny,
                        ReasonCode.NO_CONSENT,
                        "no consent on record for this face",
                        {},
                    )
                )
            verdict = deny
        elif scenario == "unknown_face_allowed":
            faces.append(
                self._face(
                    0,
                    face_size,
                    "unknown",
                    allow,
                    ReasonCode.UNKNOWN_FACE_ALLOWED,
                    "unknown faces are allowed for this operation",
                    {},
                )
            )
            verdict = allow
        elif scenario == "public_figure":
            figure = rng.choice(FIGURES)
            faces.append(
                self._face(
                    0,
                    face_size,
                    "public_figure",
                    deny,
                    ReasonCode.PUBLIC_FIGURE,
                    f"face matches public figure {figure}",
                    {"figure_id": figure, **self._similar()},
                )
            )
            verdict = deny
        elif scenario == "prompt_names_public_figure":
            figure = rng.choice(FIGURES)
            extra.append(
                Reason(
                    ReasonCode.PROMPT_NAMES_PUBLIC_FIGURE,
                    f"the prompt names public figure {figure}",
                    {"figure_id": figure},
                )
            )
            verdict = deny
        elif scenario == "scope_not_granted":
            subject_id, grant_id, scopes = rng.choice(cast.active)
            others = [op for op in OPERATIONS if op not in scopes]
            operation = rng.choice(others) if others else operation
            faces.append(
                self._face(
                    0,
                    face_size,
                    "consented_subject",
                    deny,
                    ReasonCode.SCOPE_NOT_GRANTED,
                    f"subject {subject_id} did not grant '{operation}'",
                    {"subject_id": subject_id, **self._similar(), "grant_id": grant_id},
                )
            )
            verdict = deny
        elif scenario in ("consent_expired", "consent_revoked"):
            pool = cast.expired if scenario == "consent_expired" else cast.revoked
            subject_id, grant_id = rng.choice(pool)
            code = ReasonCode(scenario)
            faces.append(
                self._face(
                    0,
                    face_size,
                    "consented_subject",
                    deny,
                    code,
                    f"subject {subject_id}: {scenario.replace('_', ' ')}",
                    {"subject_id": subject_id, **self._similar(), "grant_id": grant_id},
                )
            )
            verdict = deny
        else:  # unavailable
            extra.append(Reason(ReasonCode.UNAVAILABLE, "the consent registry could not be read"))
            verdict, size = deny, None
            faces = []

        return faces, extra, verdict, conditions, operation, size


def _entries(
    generator: _Generator, count: int, hasher: Any, tally: _Tally | None
) -> Iterator[dict[str, Any]]:
    for _ in range(count):
        decision, requester, operation = generator.one()
        if tally is not None:
            tally.add_decision(decision, operation, requester)
        digest = hashlib.sha256(decision.decision_id.encode()).hexdigest()
        yield decision_entry(
            decision,
            requester=requester,
            operation=operation,
            input_sha256=digest,
            hasher=hasher,
        )


def _append(guard: Guard, entries: Iterator[dict[str, Any]], chunk: int) -> int:
    signer = guard.audit.current_signer()
    written = 0
    batch: list[PendingEntry] = []
    for entry in entries:
        batch.append(PendingEntry.of(entry))
        if len(batch) >= chunk:
            with guard.db.transaction() as session:
                append_batch(session, signer, batch)
            written += len(batch)
            batch = []
    if batch:
        with guard.db.transaction() as session:
            append_batch(session, signer, batch)
        written += len(batch)
    return written


def _policy(guard: Guard) -> tuple[str, tuple[str, str]]:
    policy = guard.policies.current()
    current = str(policy.version)
    older = OLD_POLICY_VERSION if current != OLD_POLICY_VERSION else f"{current}-old"
    return str(policy.id), (older, current)


def bulk_decisions(
    guard: Guard,
    *,
    tenant: str,
    count: int,
    days: int = 7,
    now: datetime | None = None,
    seed: int = 7,
    chunk: int = 10_000,
    progress: Any = None,
) -> int:
    """Append ``count`` generated decisions of ``tenant`` (no registry: made-up subject and
    grant ids) spread over ``days`` days before ``now``; returns how many. ``progress(n)`` is
    called after each chunk with the number appended in it."""
    now = now or datetime.now(UTC)
    rng = random.Random(f"cast:{seed}:{tenant}")

    def made(prefix: str) -> str:
        return f"{prefix}_{rng.getrandbits(96):024x}"

    subjects = [made("sub") for _ in range(40)]
    cast = _Cast(
        active=tuple(
            (s, made("grt"), tuple(sorted(rng.sample(OPERATIONS, rng.randint(1, 3)))))
            for s in subjects[:30]
        ),
        expired=tuple((s, made("grt")) for s in subjects[30:35]),
        revoked=tuple((s, made("grt")) for s in subjects[35:]),
    )
    policy_id, versions = _policy(guard)
    generator = _Generator(
        tenant=tenant,
        cast=cast,
        policy_id=policy_id,
        versions=versions,
        now=now,
        days=days,
        seed=seed,
    )
    hasher = guard.keys.hasher()
    signer = guard.audit.current_signer()
    written = 0
    while written < count:
        n = min(chunk, count - written)
        pending = [PendingEntry.of(e) for e in _entries(generator, n, hasher, None)]
        with guard.db.transaction() as session:
            append_batch(session, signer, pending)
        written += n
        if progress is not None:
            progress(n)
    return written


# --- the seeded history --------------------------------------------------------------------


def _client(service: LiveService, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def seed_history(
    service: LiveService,
    *,
    tenants: Sequence[str] = ("acme-co", "globex-co", "initech-co"),
    decisions_per_tenant: int = 1200,
    days: int = 5,
    now: datetime | None = None,
    seed: int = 7,
) -> SeededHistory:
    """Seed ``service`` with each tenant's registry and decision history (see the module
    docstring); returns what it made and what the pages should count."""
    guard = service.guard
    registry = guard.registry
    real_now = datetime.now(UTC)
    now = now or real_now
    policy_id, versions = _policy(guard)
    hasher = guard.keys.hasher()
    keys = ApiKeyStore(guard.db)
    # One face detection per photo for every tenant (the engine is deterministic).
    astronaut_faces = guard.faces_in(sample_bytes("astronaut"))[:1]
    model_faces = guard.faces_in(crop("t1", ENROLL))[:1]
    seeded: list[SeededTenant] = []

    for number, tenant in enumerate(tenants):
        tenant_hasher = hasher.for_tenant(tenant)
        requesters = tuple(f"{tenant}/{c}" for c in CHANNELS)
        web, mobile, batch = requesters
        names = [_NAMES[(number * 4 + i) % len(_NAMES)] for i in range(4)]
        subjects = [registry.create_subject(tenant, display_name=n) for n in names]
        registry.enroll(subjects[0].id, astronaut_faces)
        registry.enroll(subjects[1].id, model_faces)
        # Expiring within 7 days of now (and of the real clock: a grant must end after it
        # starts, which is the real now).
        soon = max(now, real_now) + timedelta(days=5)
        grants = [
            registry.grant(
                subjects[0].id,
                grantee=web,
                scopes=("relight", "background"),
                evidence_sha256=_EVIDENCE,
            ),
            registry.grant(
                subjects[0].id,
                grantee=mobile,
                scopes=("restyle",),
                evidence_sha256=_EVIDENCE,
                expires_at=soon,
            ),
            registry.grant(
                subjects[1].id, grantee=web, scopes=("relight",), evidence_sha256=_EVIDENCE
            ),
            registry.grant(
                subjects[1].id,
                grantee=batch,
                scopes=("background",),
                evidence_sha256=_EVIDENCE,
                not_before=now - timedelta(days=60),
                expires_at=now - timedelta(days=days + 1),
            ),
            registry.grant(
                subjects[2].id,
                grantee=mobile,
                scopes=("retouch", "relight"),
                evidence_sha256=_EVIDENCE,
            ),
            registry.grant(
                subjects[3].id,
                grantee=web,
                scopes=("relight", "restyle"),
                evidence_sha256=_EVIDENCE,
            ),
        ]
        revoked = registry.revoke(grants[2].id)
        grants[2] = revoked
        issued = registry.consent_requests.create(
            subjects[2].id,
            tenant=tenant,
            requester=mobile,
            requester_display_name=f"{tenant} mobile",
            tenant_display_name=tenant.replace("-", " ").title(),
            scopes=("restyle",),
            grant_days=30,
            message="For the autumn campaign.",
        )
        registry.consent_requests.decline(issued.token)

        cast = _Cast(
            active=tuple(
                (g.subject_id, g.id, g.scopes) for g in (grants[0], grants[1], grants[4], grants[5])
            ),
            expired=((grants[3].subject_id, grants[3].id),),
            revoked=((grants[2].subject_id, grants[2].id),),
        )
        tally = _Tally()
        generator = _Generator(
            tenant=tenant,
            cast=cast,
            policy_id=policy_id,
            versions=versions,
            now=now,
            days=days,
            seed=seed,
        )
        _append(guard, _entries(generator, decisions_per_tenant, hasher, tally), 1000)

        # Real checks of real photos over HTTP, as <tenant>/web: real faces and boxes.
        token = keys.create(tenant=tenant, role=Role.INTEGRATOR, requester=web).token
        before = guard.audit.size()
        photos = ("astronaut", "t1") if number == 0 else ("astronaut",)
        with _client(service, token) as api:
            for photo in photos:
                answer = api.post(
                    "/v1/checks", data=params(operation="relight"), files=image_part(photo)
                )
                if answer.status_code not in (200, 403):
                    raise RuntimeError(f"check of {photo} failed: {answer.text[:300]}")
        subject_of_ref = {tenant_hasher.ref("subject", s.id): s.id for s in subjects}
        real_ids = []
        for _, entry in guard.audit.entries(start=before, limit=1000, tenant=tenant):
            if entry.get("kind") != "decision" or entry.get("tenant") != tenant:
                continue
            real_ids.append(str(entry["decision_id"]))
            tally.add(
                verdict=entry["verdict"],
                reasons=entry["reason_codes"],
                operation=entry["operation"],
                requester=web,
                policy_version=str(entry["policy"]["version"]),
                stage=entry["stage"],
                at=datetime.fromisoformat(entry["time"]),
                subjects=[subject_of_ref[r] for r in entry["subject_refs"] if r in subject_of_ref],
                figures=entry.get("figure_ids") or [],
            )

        # Erased after the decisions that name them.
        erased = subjects[3]
        registry.erase(erased.id)

        seeded.append(
            SeededTenant(
                name=tenant,
                auditor_token=service.token(tenant, Role.AUDITOR),
                admin_token=service.token(tenant, Role.ADMIN),
                requesters=requesters,
                requester_refs={r: tenant_hasher.ref("requester", r) for r in requesters},
                subjects=tuple(
                    SeededSubject(
                        id=s.id,
                        display_name=n,
                        ref=tenant_hasher.ref("subject", s.id),
                        enrolled=i < 2,
                        erased=s.id == erased.id,
                    )
                    for i, (s, n) in enumerate(zip(subjects, names, strict=True))
                ),
                grants=tuple(
                    SeededGrant(
                        id=g.id,
                        subject_id=g.subject_id,
                        grantee=g.grantee,
                        scopes=tuple(g.scopes),
                        expires_at=g.expires_at,
                        revoked=g.revoked_at is not None,
                        ref=tenant_hasher.ref("grant", g.id),
                    )
                    for g in grants
                ),
                erased_subject_id=erased.id,
                declined_request_id=issued.request.id,
                expected=tally.frozen(),
                real_decision_ids=tuple(real_ids),
            )
        )
    return SeededHistory(
        tenants=tuple(seeded),
        since=now - timedelta(days=days),
        now=now,
        policy_id=policy_id,
        policy_versions=versions,
    )
