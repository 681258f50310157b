"""Tenants are unlinkable: a face that only another tenant enrolled reads, to a tenant, exactly
as a face nobody enrolled, and nothing a tenant can read ties its records to another tenant's.

The attack each test reproduces (issue 15): tenant ``acme`` checks the t1 group photo after
tenant ``globex`` enrolled one of its faces. Before, acme's answer changed ("no consent on record
for this requester" instead of "unknown face: ...", without the rule), acme's audit entry carried
globex's subject as a stable keyed reference, and globex's subject report listed acme's entries
(requester, operation, time, input hash). Now the answer, the audit entries and the metrics are
the same as when nobody enrolled the face, and a subject report holds only its tenant's entries.

The photo's faces are detected once (the dlib engine is deterministic; see
``CachedEngine``), so many checks of one photo stay fast.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import DecisionEvent, DecisionSink, Guard
from guard.api import Role, create_app
from guard.bootstrap import initialise
from guard.config import Settings
from guard.faces import BBox, Face, FaceEngine
from guard.media import RGBImage
from guard.samples import sample_bytes
from tests.support.live import LiveService, params, serve
from tests.support.registry import EVIDENCE

pytestmark = pytest.mark.storage

PHOTO = sample_bytes("t1")  # six people
FACES_IN_PHOTO = 6

# What legitimately differs between two answers to one request: ids and times of the
# decision, and where its entry landed in the log (leaf index, hashes, the tree head).
VOLATILE = {"decision_id", "decided_at", "time", "leaf_index", "leaf_hash", "index"}


_SEEN: dict[str, list[Face]] = {}


class CachedEngine:
    """The session's dlib engine, remembering the faces of each image it was shown (for every
    test of this module: the engine is deterministic)."""

    def __init__(self, engine: FaceEngine) -> None:
        self._engine = engine
        self._seen = _SEEN

    @property
    def name(self) -> str:
        return self._engine.name

    @property
    def dimension(self) -> int:
        return self._engine.dimension

    def detect_and_embed(
        self, rgb: RGBImage, *, candidates: Sequence[BBox] | None = None
    ) -> list[Face]:
        key = hashlib.sha256(
            rgb.tobytes() + repr(rgb.shape).encode() + repr(candidates).encode()
        ).hexdigest()
        if key not in self._seen:
            self._seen[key] = self._engine.detect_and_embed(rgb, candidates=candidates)
        return list(self._seen[key])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class ToServiceMetrics:
    """Hands each decision to the served app's metrics (as a guard the service builds itself
    does), so /metrics counts this guard's decisions."""

    def __init__(self) -> None:
        self.metrics: DecisionSink | None = None

    def record(self, event: DecisionEvent) -> None:
        assert self.metrics is not None
        self.metrics.record(event)


@pytest.fixture
def service(tmp_path: Path, database_url: str, face_engine: FaceEngine) -> Iterator[LiveService]:
    """The guard on this test's database, served over HTTP, detecting each photo once."""
    config = Settings(data_dir=tmp_path / "var", database_url=database_url, api_rate_burst=10_000)
    initialise(config, face_engine)
    sink = ToServiceMetrics()
    guard = Guard(config, face_engine=CachedEngine(face_engine), sinks=[sink])
    app = create_app(guard=guard)
    sink.metrics = app.state.service.metrics
    running = serve(app)
    try:
        yield LiveService(guard, next(running))
    finally:
        next(running, None)
        guard.close()


def photo_faces(guard: Guard) -> list[Face]:
    faces = guard.faces_in(PHOTO)
    assert len(faces) == FACES_IN_PHOTO
    return faces


def nudged(face: Face) -> Face:
    """``face`` from another photo of the same person: still a match (similarity about 0.97,
    over the 0.95 threshold), but less similar to the face than the face itself."""
    moved = face.embedding + np.random.default_rng(3).normal(scale=0.02, size=face.embedding.shape)
    unit = (moved / np.linalg.norm(moved)).astype(np.float32)
    return Face(face.bbox, face.landmarks, face.score, unit, face.engine)


def scrub(value: Any) -> Any:
    """``value`` without what legitimately differs between two answers to one request."""
    if isinstance(value, dict):
        out = {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
        for key in ("receipt", "checkpoint", "inclusion_proof", "proof", "tree_head"):
            if key in out:  # their shape is the same; their hashes are another leaf's
                out[key] = sorted(out[key]) if isinstance(out[key], dict) else type(out[key])
        return out
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


class Tenant:
    """A tenant's integrator (checks) and auditor (reads entries and reports)."""

    def __init__(self, service: LiveService, name: str) -> None:
        self.service = service
        self.name = name
        self.requester = f"{name}/app"

    def api(self, role: Role = Role.INTEGRATOR) -> httpx.Client:
        return self.service.client(self.name, role)

    def log_size(self) -> int:
        return self.service.guard.audit.size()

    def check(self, operation: str = "relight") -> tuple[int, str | None, dict[str, Any]]:
        """Check the group photo: status, decision header, body."""
        with self.api() as api:
            response = api.post(
                "/v1/checks",
                data=params(operation=operation),
                files={"image": ("t1.jpg", PHOTO, "image/jpeg")},
            )
        assert response.status_code in (200, 403), response.text
        return response.status_code, response.headers.get("x-guard-decision"), response.json()

    def entries_since(self, start: int) -> list[dict[str, Any]]:
        """Every audit entry this tenant's auditor can read from index ``start`` on."""
        with self.api(Role.AUDITOR) as api:
            response = api.get(f"/v1/audit/entries?start={start}&limit=1000")
        assert response.status_code == 200, response.text
        return [item["entry"] for item in response.json()["entries"]]

    def enroll(self, face: Face, *, grant: bool = False) -> str:
        registry = self.service.guard.registry
        subject = registry.create_subject(self.name)
        registry.enroll(subject.id, [face])
        if grant:
            registry.grant(
                subject.id, grantee=self.requester, scopes=["relight"], evidence_sha256=EVIDENCE
            )
        return subject.id

    def observe(self) -> tuple[Any, list[dict[str, Any]], dict[str, float]]:
        """One check of the photo as this tenant reads it: the answer, the entries it added
        (and whatever else appeared for the tenant meanwhile), the metrics it moved."""
        start, before = self.log_size(), metrics(self.service)
        answer = self.check()
        moved = _delta(before, metrics(self.service))
        return answer, self.entries_since(start), moved


_SAMPLE = re.compile(r"^(guard_\w+)(\{[^}]*\})? (\S+)$")


def metrics(service: LiveService) -> dict[str, float]:
    """The counters (series → value) of the service's /metrics; latencies and creation times
    are left out, they differ from one request to the next whoever enrolled what."""
    text = httpx.get(f"{service.base_url}/metrics").text
    series = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not match.group(1).endswith("_created") and "_seconds" not in match.group(1):
            series[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return series


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def warm_up(tenant: Tenant) -> None:
    """A first check records the policy and blocklist in force (global entries) and loads
    what loads lazily, so that the checks compared afterwards differ in nothing else."""
    tenant.check()


def test_a_face_only_another_tenant_enrolled_reads_as_nobody(service: LiveService) -> None:
    """acme's answer, audit entries and metrics for the group photo are the same whether
    globex enrolled one of its faces or nobody did; globex's subject appears nowhere."""
    acme, globex = Tenant(service, "acme"), Tenant(service, "globex")
    warm_up(acme)
    nobody = acme.observe()
    subject_id = globex.enroll(photo_faces(service.guard)[0], grant=True)
    with globex.api() as api:  # globex's own view: its subject is there, face 0
        assert (
            subject_id
            in api.post(
                "/v1/checks",
                data=params(operation="relight"),
                files={"image": ("t1.jpg", PHOTO, "image/jpeg")},
            ).text
        )
    elsewhere = acme.observe()

    (status, header, body), entries, moved = elsewhere
    assert status == 403 and header == "deny" and body["code"] == "no_consent"
    assert scrub(elsewhere[0]) == scrub(nobody[0])
    assert scrub(entries) == scrub(nobody[1])
    assert [e["kind"] for e in entries] == ["decision"], "globex's registry entries stay its own"
    assert moved == nobody[2]
    assert 'guard_decisions_total{stage="input",verdict="deny"}' in moved
    assert 'guard_decision_reasons_total{reason="no_consent"}' in moved
    reasons = body["decision"]["faces"][0]["reasons"]
    assert reasons == [
        {
            "code": "no_consent",
            "message": "unknown face: nobody with consent on record matches it",
            "evidence": reasons[0]["evidence"],
        }
    ]
    assert reasons[0]["evidence"].get("policy_rule") == "no-unknown-faces"
    subject_ref_globex = service.guard.registry.subject_ref(subject_id)
    readable = [str(body), str(entries), httpx.get(f"{service.base_url}/metrics").text]
    for text in readable:
        assert subject_id not in text and subject_ref_globex not in text
    assert all(entry["subject_refs"] == [] for entry in entries)


def test_a_face_both_tenants_enrolled_reads_as_the_own_subject(service: LiveService) -> None:
    """acme enrolled face 2 (from another photo of her, with consent); globex enrolled this very
    face, a closer match: acme's answer is exactly its own subject's, as if globex had not."""
    acme, globex = Tenant(service, "acme"), Tenant(service, "globex")
    face = photo_faces(service.guard)[2]
    own = acme.enroll(nudged(face), grant=True)
    warm_up(acme)
    alone = acme.observe()
    globex.enroll(face, grant=True)
    both = acme.observe()
    assert scrub(both[0]) == scrub(alone[0])
    assert scrub(both[1]) == scrub(alone[1])
    assert both[2] == alone[2]
    [face_2] = [f for f in both[0][2]["decision"]["faces"] if f["face_index"] == 2]
    assert face_2["kind"] == "consented_subject" and face_2["verdict"] == "allow"
    assert own in str(face_2)


def test_another_tenants_templates_cannot_crowd_out_the_own_match(
    service: LiveService,
) -> None:
    """globex enrolls many near-exact copies of a face that acme enrolled less exactly: acme's
    lookup searches only its own templates, so its subject is still found."""
    acme = Tenant(service, "acme")
    face = photo_faces(service.guard)[3]
    own = acme.enroll(nudged(face), grant=True)
    registry = service.guard.registry
    crowd = registry.create_subject("globex")
    registry.enroll(crowd.id, [face] * 40)  # more templates than one search returns
    [candidates] = registry.match([face.embedding], tenant="acme")
    assert candidates[0].subject_id == own
    _, _, body = acme.check()
    [face_3] = [f for f in body["decision"]["faces"] if f["face_index"] == 3]
    assert face_3["kind"] == "consented_subject" and own in str(face_3)
    assert crowd.id not in str(body)


_tenant_numbers = itertools.count()


@pytest.mark.slow
@settings(
    max_examples=6,
    deadline=None,
    # One service serves every example; each example uses tenants of its own.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    elsewhere=st.integers(0, FACES_IN_PHOTO - 1),
    own=st.none() | st.integers(0, FACES_IN_PHOTO - 1),
)
def test_whichever_face_another_tenant_enrolls_changes_nothing(
    service: LiveService, elsewhere: int, own: int | None
) -> None:
    """Tenant A (which may have enrolled a face of its own, with consent) checks the photo
    before and after tenant B enrolls face ``elsewhere``: the same answer and entries."""
    number = next(_tenant_numbers)
    a, b = Tenant(service, f"a{number}"), Tenant(service, f"b{number}")
    faces = photo_faces(service.guard)
    own_subject = a.enroll(nudged(faces[own]), grant=True) if own is not None else None
    warm_up(a)
    before = a.observe()
    b_subject = b.enroll(faces[elsewhere], grant=True)
    after = a.observe()
    assert scrub(after[0]) == scrub(before[0])
    assert scrub(after[1]) == scrub(before[1])
    assert after[2] == before[2]
    assert b_subject not in str(after)
    b_ref = service.guard.registry.subject_ref(b_subject)
    assert b_ref not in str(after)
    kinds = {f["face_index"]: f["kind"] for f in after[0][2]["decision"]["faces"]}
    assert kinds == {
        i: "consented_subject" if i == own else "unknown" for i in range(FACES_IN_PHOTO)
    }
    assert own_subject is None or own_subject in str(after[0])


def test_a_subject_report_holds_only_its_tenants_entries(service: LiveService) -> None:
    """globex's auditor asks for the report of its subject after acme checked the photo with
    that subject's face in it: none of acme's entries appear, even one that names the
    subject's reference (as entries keyed with the deployment key once did)."""
    acme, globex = Tenant(service, "acme"), Tenant(service, "globex")
    subject_id = globex.enroll(photo_faces(service.guard)[1], grant=True)
    warm_up(acme)
    start = acme.log_size()
    acme.check()
    acme_entries = service.guard.audit.entries(start=start, tenant="acme")
    assert acme_entries
    registry, audit = service.guard.registry, service.guard.audit
    ref = registry.subject_ref(subject_id)
    forged = audit.append({"v": 1, "kind": "decision", "tenant": "acme", "subject_refs": [ref]})
    with globex.api(Role.AUDITOR) as api:
        response = api.get(f"/v1/subjects/{subject_id}/report")
    assert response.status_code == 200, response.text
    report = response.json()
    assert [item["entry"]["kind"] for item in report] == [
        "subject_created",
        "templates_enrolled",
        "consent_granted",
    ]
    assert all(item["entry"]["tenant"] == "globex" for item in report)
    indices = {item["index"] for item in report}
    assert indices.isdisjoint({i for i, _ in acme_entries} | {forged.leaf_index})
    assert "acme" not in response.text


def test_each_tenants_entries_reference_with_its_own_key(service: LiveService) -> None:
    """A tenant's entries reference its subjects with its own key: the report finds them by
    that reference, and the reference under another tenant's key is in none of them."""
    registry, audit = service.guard.registry, service.guard.audit
    subject = registry.create_subject("acme")
    own_ref = registry.subject_ref(subject.id)
    assert own_ref == registry.subject_ref(subject.id, "acme")
    assert own_ref != registry.subject_ref(subject.id, "globex")
    [(_, created)] = audit.entries_mentioning(own_ref)
    assert created["kind"] == "subject_created" and created["subject_refs"] == [own_ref]
    assert audit.entries_mentioning(registry.subject_ref(subject.id, "globex")) == []
