"""``Guard``: composes the stages for ``check`` (input gate), ``edit`` (gate, edit, output scan,
provenance), ``stamp`` (scan and provenance for an image made elsewhere) and ``verify``.

    >>> from guard import Guard, EditRequest
    >>> guard = Guard()                                                 # doctest: +SKIP
    >>> result = guard.edit(EditRequest(image=photo_bytes, operation="relight",
    ...                                 requester="acme/app"))          # doctest: +SKIP
    >>> result.decision.verdict, len(result.image or b"")               # doctest: +SKIP
    (<Verdict.ALLOW_WITH_CONDITIONS: 'allow_with_conditions'>, 812345)

This module decides nothing itself: faces come from ``faces``, identities from ``identity``,
verdicts from ``policy``, pixels from ``editors``. Anything a decision depends on that cannot be
read (registry, blocklist, policy, keys) yields a ``deny`` with reason ``unavailable``.

Every allowed output is watermarked, signed (C2PA) and stored before it is returned; if that
cannot happen (no signing key, database down) the output is withheld and the decision becomes a
``deny`` with reason ``unavailable``. Every decision goes to each ``DecisionSink`` (the audit log
plugs in here) before the caller sees it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy.orm import Session

from guard.audit.entries import decision_entry, in_force_entry, registry_entry, release_entry
from guard.audit.log import AuditLog, Receipt, open_audit_log
from guard.config import Settings
from guard.db import Database
from guard.devices import configure_faiss_threads
from guard.editors import Editor, ProgressCallback, create_editor
from guard.errors import InvalidInput, Unavailable
from guard.faces import Face, FaceEngine, create_face_engine
from guard.identity import (
    Blocklist,
    BlocklistStore,
    ConsentRegistry,
    FaceFacts,
    Matcher,
    RegistryChange,
    tenant_of,
)
from guard.keys import KeyedHasher, keyed_hasher, template_cipher
from guard.media import DecodedImage, OutputFormat, RGBImage, decode_image
from guard.policy import (
    Decision,
    Policy,
    PolicySource,
    PromptSubject,
    RequestFacts,
    Stage,
    Verdict,
    decide,
    deny_unavailable,
)
from guard.provenance import (
    Provenance,
    SoftwareAgent,
    StampContext,
    StampedImage,
    VerificationReport,
    consent_grant_refs,
    parent_ingredient,
)
from guard.safety import (
    NamedIdentity,
    NsfwClassifier,
    NsfwScore,
    NudeNetClassifier,
    PromptMatch,
    PromptScreen,
    appeared_faces,
    drift_facts,
    unreadable_faces,
)

ParamValue = str | float | int | bool
# Tenants whose subjects' names are kept compiled for prompt screening at once.
_SUBJECT_SCREENS = 256


@dataclass(frozen=True)
class CheckRequest:
    """A pre-generation question: may ``requester`` do ``operation`` to this image/prompt?"""

    requester: str
    operation: str
    image: bytes | None = None
    prompt: str = ""


@dataclass(frozen=True)
class EditRequest:
    """An edit for the guard to gate, run and scan."""

    image: bytes
    operation: str
    requester: str
    prompt: str = ""
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    output_format: OutputFormat = "png"


@dataclass(frozen=True)
class StampRequest:
    """An image another generator made, to be scanned and, if allowed, watermarked and signed.

    ``source_image`` is the input the generator started from, if any: it becomes the manifest's
    parent ingredient. ``output_format`` defaults to the image's own (PNG for non-web formats).
    """

    image: bytes
    requester: str
    generator: str
    generator_version: str = "unknown"
    operation: str = "generate"
    prompt: str = ""
    source_image: bytes | None = None
    output_format: OutputFormat | None = None


@dataclass(frozen=True)
class Result:
    """What ``Guard.edit`` and ``Guard.stamp`` return. ``decision`` is the final word: the output
    scan's when there was an output, else the input gate's. ``image`` (watermarked, with a signed
    C2PA manifest) and ``provenance`` are set only when it is allowed."""

    decision: Decision
    input_decision: Decision
    output_decision: Decision | None
    image: bytes | None
    input_sha256: str
    output_sha256: str | None
    editor: str
    provenance: StampedImage | None = None
    receipts: tuple[Receipt, ...] = ()
    """Audit receipts, in order: input decision, output decision, release (those that exist)."""
    editor_record: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """What reproduces the edit (model and weights hashes, seed, steps, guidance, prompt hash),
    as the editor describes it; also in the C2PA manifest."""


@dataclass(frozen=True)
class DecisionEvent:
    """What a sink is told about each decision (no pixels, no embeddings)."""

    decision: Decision
    requester: str
    operation: str
    input_sha256: str | None
    output_sha256: str | None = None
    watermark_record_id: int | None = None
    manifest_label: str | None = None
    receipt: Receipt | None = None


class DecisionSink(Protocol):
    def record(self, event: DecisionEvent) -> None: ...


class StageObserver(Protocol):
    """Told how long each stage took (``faces``, ``match``, ``edit``, ``output_scan``,
    ``stamp``, ``audit``): the HTTP service's latency metrics plug in here."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...


@dataclass(frozen=True)
class _Gate:
    """The input gate's outcome, kept for the output scan."""

    decision: Decision
    faces: list[Face]
    facts: list[FaceFacts]
    matcher: Matcher | None
    policy: Policy | None


class Guard:
    """The library entry point. Thread-safe; build one per process and reuse it."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        face_engine: FaceEngine | None = None,
        editor: Editor | None = None,
        sinks: Sequence[DecisionSink] = (),
        provenance: Provenance | None = None,
        audit: AuditLog | None = None,
        observer: StageObserver | None = None,
        nsfw: NsfwClassifier | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._observer = observer
        self._nsfw = nsfw
        configure_faiss_threads(self.settings.faiss_threads)
        self.db = Database(self.settings.database_url)
        self.face_engine = face_engine or create_face_engine(self.settings)
        self._editor = editor
        self._editor_lock = threading.Lock()
        self.blocklists = BlocklistStore(self.settings.blocklist_path)
        self._policies = PolicySource(self.settings.policy_file)
        self._sinks = list(sinks)
        self.provenance = provenance or Provenance(self.settings, self.db)
        self.audit = audit or open_audit_log(self.settings, self.db)
        self._registry: ConsentRegistry | None = None
        self._in_force: dict[str, str] = {}
        self._keyed_hasher: KeyedHasher | None = None
        self._screen: tuple[tuple[int, int, int], PromptScreen] | None = None
        # Per tenant: its subjects' display names and their compiled screen.
        self._subject_screens: dict[str, tuple[tuple[tuple[str, str], ...], PromptScreen]] = {}
        self._registry_lock = threading.Lock()

    # components ------------------------------------------------------------------------------

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._observer is not None:
                self._observer.observe_stage(stage, time.perf_counter() - start)

    @property
    def registry(self) -> ConsentRegistry:
        """The consent registry (raises :class:`Unavailable` if its keys or schema are missing)."""
        with self._registry_lock:
            if self._registry is None:
                self.db.require_schema()
                self._registry = ConsentRegistry(
                    self.db,
                    template_cipher(self.settings),
                    self._hasher(),
                    engine_name=self.face_engine.name,
                    dimension=self.face_engine.dimension,
                    on_change=self._audit_registry_change,
                )
            return self._registry

    def _audit_registry_change(self, session: Session, change: RegistryChange) -> None:
        """Every consent change is appended in its own transaction: both land or neither."""
        entry = registry_entry(
            change.kind,
            tenant=change.tenant,
            subject_id=change.subject_id,
            hasher=self._hasher(),
            grant_id=change.grant_id,
            grantee=change.grantee,
            scopes=change.scopes,
            evidence_sha256=change.evidence_sha256,
            count=change.count,
        )
        self.audit.append_in(session, entry)

    def _audit_in_force(self, policy: Policy, blocklist: Blocklist) -> None:
        """Append the policy and blocklist generations in force, once each per change."""
        figures = sorted(blocklist.figures)
        states: dict[str, tuple[str, dict[str, Any]]] = {
            "policy_in_force": (
                _digest(policy.model_dump(mode="json")),
                {"policy": {"id": policy.id, "version": policy.version}},
            ),
            "blocklist_in_force": (
                _digest({"generation": blocklist.generation, "figures": figures}),
                {
                    "generation": blocklist.generation,
                    "engine": blocklist.engine_name,
                    "figure_ids": figures,
                },
            ),
        }
        for kind, (digest, facts) in states.items():
            if self._in_force.get(kind) == digest:
                continue
            logged = self.audit.entries_mentioning(digest)
            if not any(entry.get("kind") == kind for _, entry in logged):
                self.audit.append(in_force_entry(kind, digest, **facts))
            self._in_force[kind] = digest

    def subject_report(self, subject_id: str) -> list[tuple[int, dict[str, Any]]]:
        """Every audit entry that touched ``subject_id`` (for a data-subject access request)."""
        return self.audit.entries_mentioning(self._hasher().ref("subject", subject_id))

    def _hasher(self) -> KeyedHasher:
        """The HMAC key, read once (every decision and consent change uses it); a missing key is
        :class:`Unavailable` on each call until it exists."""
        if self._keyed_hasher is None:
            self._keyed_hasher = keyed_hasher(self.settings)
        return self._keyed_hasher

    @property
    def editor(self) -> Editor:
        """The editor (``GUARD_EDITOR``), made on first use: a diffusers editor hashes its
        weights, which commands that never edit should not wait for."""
        with self._editor_lock:
            if self._editor is None:
                self._editor = create_editor(self.settings)
            return self._editor

    def policy(self) -> Policy:
        return self._policies.current()

    def _nsfw_score(self, rgb: RGBImage | None) -> NsfwScore | None:
        """The NSFW score of an image and the faces its detector saw (``None``: no image, or
        screening off). The classifier loads on first use; if it cannot, the decision is
        ``unavailable``."""
        if rgb is None or self.settings.nsfw_classifier == "none":
            return None
        if self._nsfw is None:
            self._nsfw = NudeNetClassifier(self.settings.device)
        with self._timed("nsfw"):
            return self._nsfw.score(rgb)

    def _prompt_screen(self, blocklist: Blocklist) -> PromptScreen:
        """The blocklist's names compiled for screening, rebuilt when the blocklist changes."""
        key = (id(blocklist), blocklist.generation, len(blocklist))
        cached = self._screen
        if cached is None or cached[0] != key:
            cached = (key, PromptScreen(blocklist.figures.values()))
            self._screen = cached
        return cached[1]

    def _prompt_subjects(self, prompt: str, requester: str) -> tuple[PromptSubject, ...]:
        """The requester's tenant's enrolled subjects the prompt names, with their grants to
        this requester. Only the own tenant's names are screened: screening every tenant's
        would let a prompt probe which names other tenants enrolled."""
        if not prompt.strip():
            return ()
        tenant = tenant_of(requester)
        names = tuple(self.registry.named_subjects(tenant))
        if not names:
            return ()
        cached = self._subject_screens.get(tenant)
        if cached is None or cached[0] != names:
            if len(self._subject_screens) >= _SUBJECT_SCREENS:
                self._subject_screens.clear()
            cached = (names, PromptScreen(NamedIdentity(i, name) for i, name in names))
            self._subject_screens[tenant] = cached
        return tuple(
            PromptSubject(
                match.identity_id,
                tuple(self.registry.list_grants(subject_id=match.identity_id, grantee=requester)),
                _mention(match),
            )
            for match in cached[1].screen(prompt)
        )

    def decode(self, data: bytes) -> DecodedImage:
        settings = self.settings
        return decode_image(
            data,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            allow_multiframe=settings.allow_multiframe,
        )

    def faces_in(self, data: bytes) -> list[Face]:
        return self.face_engine.detect_and_embed(self.decode(data).rgb)

    def close(self) -> None:
        self.db.dispose()

    # entry points ----------------------------------------------------------------------------

    def check(self, request: CheckRequest) -> Decision:
        """The pre-generation gate: decide without editing anything."""
        return self.check_with_receipt(request)[0]

    def check_with_receipt(self, request: CheckRequest) -> tuple[Decision, Receipt]:
        """:meth:`check`, also returning the decision's audit receipt."""
        decoded = self.decode(request.image) if request.image is not None else None
        gate = self._gate(
            decoded, requester=request.requester, operation=request.operation, prompt=request.prompt
        )
        receipt = self._record(
            gate.decision, request.requester, request.operation, decoded.sha256 if decoded else None
        )
        return gate.decision, receipt

    def receipt(self, decision_id: str) -> Receipt:
        """The audit receipt of a decision (its entry, proved against the latest checkpoint)."""
        return self.audit.receipt_for_decision(decision_id)

    def edit(self, request: EditRequest, *, progress: ProgressCallback | None = None) -> Result:
        """Gate the input, run the editor, scan the output, stamp and return it if allowed.

        ``progress(done, total)`` is told the editor's steps as it runs."""
        if request.operation not in self.editor.operations:
            raise InvalidInput(
                f"editor '{self.editor.name}' has no operation '{request.operation}'; "
                f"choose one of {sorted(self.editor.operations)}"
            )
        record = self.editor.describe(request.operation, request.params, request.prompt)
        decoded = self.decode(request.image)
        gate = self._gate(
            decoded, requester=request.requester, operation=request.operation, prompt=request.prompt
        )
        input_receipt = self._record(
            gate.decision, request.requester, request.operation, decoded.sha256
        )
        if not gate.decision.allowed:
            return Result(
                gate.decision,
                gate.decision,
                None,
                None,
                decoded.sha256,
                None,
                self.editor.name,
                receipts=(input_receipt,),
                editor_record=record,
            )
        with self._timed("edit"):
            edited = self.editor.edit(
                decoded.rgb,
                gate.faces,
                request.operation,
                request.params,
                prompt=request.prompt,
                progress=progress,
            )
        with self._timed("output_scan"):
            scanned = self._scan_output(gate, edited, request)
        context = StampContext(
            decision=scanned,
            operation=request.operation,
            software_agent=SoftwareAgent(self.editor.name, self.editor.version),
            parent=parent_ingredient(decoded, request.image),
            editor_record=record,
        )
        output_decision, stamped, receipts = self._audited_release(
            edited, request.output_format, context, request.requester, decoded.sha256, gate.decision
        )
        return Result(
            output_decision,
            gate.decision,
            output_decision,
            stamped.data if stamped else None,
            decoded.sha256,
            stamped.sha256 if stamped else None,
            self.editor.name,
            stamped,
            (input_receipt, *receipts),
            record,
        )

    def stamp(self, request: StampRequest) -> Result:
        """Scan an image another generator made; watermark, sign and return it if allowed."""
        decoded = self.decode(request.image)
        gate = self._gate(
            decoded,
            requester=request.requester,
            operation=request.operation,
            prompt=request.prompt,
            stage="output",
        )
        source = self.decode(request.source_image) if request.source_image else None
        context = StampContext(
            decision=gate.decision,
            operation=request.operation,
            software_agent=SoftwareAgent(request.generator, request.generator_version),
            parent=(
                parent_ingredient(source, request.source_image)
                if source is not None and request.source_image is not None
                else None
            ),
        )
        fmt = request.output_format or _web_format(decoded.source_format)
        decision, stamped, receipts = self._audited_release(
            decoded.rgb, fmt, context, request.requester, decoded.sha256, gate.decision
        )
        return Result(
            decision,
            decision,
            decision,
            stamped.data if stamped else None,
            decoded.sha256,
            stamped.sha256 if stamped else None,
            request.generator,
            stamped,
            receipts,
        )

    def verify(self, data: bytes) -> VerificationReport:
        """Is ``data`` an output of this guard, untouched, and under which decision?"""
        return self.provenance.verify(data, self.decode)

    # stages ----------------------------------------------------------------------------------

    def _gate(
        self,
        decoded: DecodedImage | None,
        *,
        requester: str,
        operation: str,
        prompt: str,
        stage: Stage = "input",
    ) -> _Gate:
        if not requester.strip():
            raise InvalidInput("requester (the grantee asking for the edit) must not be empty")
        if len(prompt) > self.settings.max_prompt_chars:
            raise InvalidInput(
                f"the prompt is {len(prompt):,} characters; the limit is "
                f"{self.settings.max_prompt_chars:,} (GUARD_MAX_PROMPT_CHARS)"
            )
        policy = None
        try:
            policy = self.policy()
            blocklist = self.blocklists.current()
            self._audit_in_force(policy, blocklist)
            matcher = Matcher(
                self.registry,
                blocklist,
                engine=self.face_engine,
                registry_threshold=self.settings.registry_threshold(self.face_engine.name),
                blocklist_threshold=self.settings.blocklist_threshold(self.face_engine.name),
                near_miss_margin=self.settings.near_miss_margin(self.face_engine.name),
            )
            with self._timed("faces"):
                faces = self.face_engine.detect_and_embed(decoded.rgb) if decoded else []
            with self._timed("match"):
                facts = matcher.facts_for(faces, requester=requester)
                mentions = self._prompt_screen(blocklist).screen(prompt)
                prompt_subjects = self._prompt_subjects(prompt, requester)
            nsfw = self._nsfw_score(decoded.rgb if decoded else None)
            request_facts = RequestFacts(
                stage=stage,
                requester=requester,
                operation=operation,
                faces=_with_unreadable(facts, faces, nsfw),
                prompt_figures=tuple(m.identity_id for m in mentions),
                prompt_mentions={m.identity_id: _mention(m) for m in mentions},
                prompt_subjects=prompt_subjects,
                nsfw_score=nsfw.score if nsfw else None,
                nsfw_labels=nsfw.labels if nsfw else (),
            )
            decision = decide(policy, request_facts)
            return _Gate(decision, faces, facts, matcher, policy)
        except Unavailable as exc:
            return _Gate(self._unavailable(exc, stage, policy), [], [], None, policy)

    def _scan_output(self, gate: _Gate, edited: RGBImage, request: EditRequest) -> Decision:
        assert gate.matcher is not None and gate.policy is not None  # an allowed gate has both
        try:
            output_faces = self.face_engine.detect_and_embed(edited)
            facts = gate.matcher.facts_for(output_faces, requester=request.requester)
            checked = [
                fd.face_index
                for fd in gate.decision.faces
                if fd.verdict is Verdict.ALLOW and fd.kind != "unknown"
            ]
            threshold = self.settings.drift_threshold(self.face_engine.name)
            drift = drift_facts(gate.faces, checked, output_faces, threshold=threshold)
            appeared = appeared_faces(gate.faces, output_faces, threshold=threshold)
            nsfw = self._nsfw_score(edited)
            return decide(
                gate.policy,
                RequestFacts(
                    stage="output",
                    requester=request.requester,
                    operation=request.operation,
                    faces=_with_unreadable(facts, output_faces, nsfw),
                    drift=drift,
                    appeared=appeared,
                    nsfw_score=nsfw.score if nsfw else None,
                    nsfw_labels=nsfw.labels if nsfw else (),
                    carried_conditions=gate.decision.conditions,
                ),
            )
        except Unavailable as exc:
            return self._unavailable(exc, "output", gate.policy)

    def _release(
        self,
        rgb: RGBImage,
        output_format: OutputFormat,
        context: StampContext,
        *,
        grants_from: Decision,
    ) -> tuple[Decision, StampedImage | None]:
        """Watermark, sign and store an allowed output; withhold it (deny) if that fails."""
        if not context.decision.allowed:
            return context.decision, None
        try:
            refs = consent_grant_refs(grants_from, self._hasher())
            with self._timed("stamp"):
                stamped = self.provenance.stamp(
                    rgb, output_format, replace(context, consent_grant_refs=refs)
                )
            return context.decision, stamped
        except Unavailable as exc:
            message = f"the output cannot be stamped, so it is withheld: {exc.message}"
            return deny_unavailable(message, stage="output", policy=self._policy_or_none()), None

    def _policy_or_none(self) -> Policy | None:
        try:
            return self.policy()
        except Unavailable:
            return None

    @staticmethod
    def _unavailable(exc: Unavailable, stage: Stage, policy: Policy | None) -> Decision:
        return deny_unavailable(exc.message, stage=stage, policy=policy)

    def _audited_release(
        self,
        rgb: RGBImage,
        output_format: OutputFormat,
        context: StampContext,
        requester: str,
        input_sha256: str,
        grants_from: Decision,
    ) -> tuple[Decision, StampedImage | None, tuple[Receipt, ...]]:
        """Audit the output decision, then (if allowed) stamp with its leaf hash in the manifest
        and audit the release; a stamping failure is audited as the deny it becomes."""
        operation = context.operation
        decided = self._record(context.decision, requester, operation, input_sha256)
        if not context.decision.allowed:
            return context.decision, None, (decided,)
        context = replace(context, audit_leaf_hash=decided.leaf_hash)
        decision, stamped = self._release(rgb, output_format, context, grants_from=grants_from)
        if stamped is None:
            return (
                decision,
                None,
                (decided, self._record(decision, requester, operation, input_sha256)),
            )
        entry = release_entry(
            decision,
            requester=requester,
            output_sha256=stamped.sha256,
            watermark_record_id=stamped.record_id,
            manifest_label=stamped.manifest_label,
            hasher=self._hasher(),
        )
        with self._timed("audit"):
            released = self.audit.append(entry)
        self._notify(
            DecisionEvent(
                decision,
                requester,
                operation,
                input_sha256,
                stamped.sha256,
                stamped.record_id,
                stamped.manifest_label,
                released,
            )
        )
        return decision, stamped, (decided, released)

    def _record(
        self, decision: Decision, requester: str, operation: str, input_sha256: str | None
    ) -> Receipt:
        """Append the decision to the audit log (before anyone sees it) and tell the sinks.

        Raises :class:`Unavailable` when the log cannot be written: no answer leaves unaudited.
        """
        entry = decision_entry(
            decision,
            requester=requester,
            operation=operation,
            input_sha256=input_sha256,
            hasher=self._hasher(),
        )
        with self._timed("audit"):
            receipt = self.audit.append(entry)
        if decision.stage == "input" or not decision.allowed:
            self._notify(
                DecisionEvent(decision, requester, operation, input_sha256, receipt=receipt)
            )
        return receipt

    def _notify(self, event: DecisionEvent) -> None:
        for sink in self._sinks:
            sink.record(event)


_WEB_FORMATS: dict[str, OutputFormat] = {"JPEG": "jpeg", "WEBP": "webp"}


def _with_unreadable(
    facts: Sequence[FaceFacts], faces: Sequence[Face], nsfw: NsfwScore | None
) -> tuple[FaceFacts, ...]:
    """The identified faces' facts, then one unknown, unreadable face for each face the NSFW
    detector saw that the identity engine did not read (covered or turned away)."""
    seen = nsfw.face_boxes if nsfw else ()
    extra = [
        FaceFacts(len(facts) + offset, box, None, None, (), None, readable=False)
        for offset, box in enumerate(unreadable_faces(seen, faces))
    ]
    return (*facts, *extra)


def _mention(match: PromptMatch) -> dict[str, str]:
    """How the prompt named someone, for the decision's evidence."""
    return {
        "rule": match.rule,
        "span": f"{match.span[0]}:{match.span[1]}",
        "matched": match.text[:200],
    }


def _web_format(source_format: str) -> OutputFormat:
    return _WEB_FORMATS.get(source_format, "png")


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
