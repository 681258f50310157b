"""``Guard``: composes the stages for ``check`` (input gate), ``edit`` (gate, edit, output scan,
provenance), ``stamp`` (scan and provenance for an image made elsewhere) and ``verify``.

    >>> from guard import Guard, EditRequest
    >>> guard = Guard()                                                 # doctest: +SKIP
    >>> result = guard.edit(EditRequest(image=photo_bytes, operation="relight",
    ...                                 requester="acme/app"))          # doctest: +SKIP
    >>> result.decision.verdict, len(result.image or b"")               # doctest: +SKIP
    (<Verdict.ALLOW_WITH_CONDITIONS: 'allow_with_conditions'>, 812345)

This module decides nothing itself: faces come from ``faces``, identities from ``identity``,
prompt and output screening from ``safety``, verdicts from ``policy``, pixels from ``editors``.
Anything a decision depends on that cannot be read (registry, blocklist, policy, keys) yields a
``deny`` with reason ``unavailable``.

Every allowed output is watermarked, signed (C2PA) and stored before it is returned; if that
cannot happen (no signing key, database down) the output is withheld and the decision becomes a
``deny`` with reason ``unavailable``. Every decision goes to each ``DecisionSink`` (the audit log
plugs in here) before the caller sees it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from guard.audit import (
    AuditLog,
    InForceRecorder,
    Receipt,
    decision_entry,
    open_audit_log,
    registry_entry,
    release_entry,
)
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
    Matcher,
    RegistryChange,
    tenant_of,
)
from guard.media import DecodedImage, OutputFormat, RGBImage, decode_image, web_format
from guard.policy import (
    Decision,
    Policy,
    PolicySource,
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
from guard.requests import (
    CheckRequest,
    DecisionEvent,
    DecisionSink,
    EditRequest,
    Result,
    StageObserver,
    StampRequest,
)
from guard.safety import (
    NsfwClassifier,
    NsfwScore,
    NudeNetClassifier,
    PromptScreens,
    appeared_faces,
    drift_facts,
    with_unreadable,
)
from guard.secrets import KeyedHasher, keyed_hasher, template_cipher


@dataclass(frozen=True)
class _Gate:
    """The input gate's outcome, kept for the output scan."""

    decision: Decision
    faces: Sequence[Face] = ()
    matcher: Matcher | None = None
    policy: Policy | None = None


class Guard:
    """The library entry point. Thread-safe; build one per process and reuse it.

    The flows are :meth:`check`, :meth:`edit`, :meth:`stamp` and :meth:`verify`. The services
    they compose are its administration surface (the HTTP service and the CLI use them too):

    - ``settings`` (:class:`~guard.config.Settings`) and ``db`` (the database);
    - ``registry`` (:class:`~guard.identity.ConsentRegistry`): subjects, templates, grants;
    - ``blocklists`` (:class:`~guard.identity.BlocklistStore`): ``current()``, ``update()``;
    - ``policies`` (:class:`~guard.policy.PolicySource`): ``current()``;
    - ``audit`` (:class:`~guard.audit.AuditLog`): entries, receipts, checkpoints;
    - ``provenance`` (:class:`~guard.provenance.Provenance`): stamping and the manifest store;
    - ``face_engine`` and ``editor`` (the pluggable stages).
    """

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
        configure_faiss_threads(self.settings.faiss_threads)
        self.db = Database(self.settings.database_url)
        self.face_engine = face_engine or create_face_engine(self.settings)
        self.blocklists = BlocklistStore(self.settings.blocklist_path)
        self.policies = PolicySource(self.settings.policy_file)
        self.provenance = provenance or Provenance(self.settings, self.db)
        self.audit = audit or open_audit_log(self.settings, self.db)
        self._editor = editor
        self._nsfw = nsfw
        self._sinks = list(sinks)
        self._observer = observer
        self._in_force = InForceRecorder(self.audit)
        self._screens = PromptScreens()
        self._registry: ConsentRegistry | None = None
        self._refs: KeyedHasher | None = None
        self._registry_lock = threading.Lock()
        self._editor_lock = threading.Lock()

    # services --------------------------------------------------------------------------------

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

    @property
    def editor(self) -> Editor:
        """The editor (``GUARD_EDITOR``), made on first use: a diffusers editor hashes its
        weights, which commands that never edit should not wait for."""
        with self._editor_lock:
            if self._editor is None:
                self._editor = create_editor(self.settings)
            return self._editor

    def _hasher(self) -> KeyedHasher:
        """The HMAC key, read once (every decision and consent change uses it); a missing key is
        :class:`Unavailable` on each call until it exists."""
        if self._refs is None:
            self._refs = keyed_hasher(self.settings)
        return self._refs

    def _audit_registry_change(self, session: Session, change: RegistryChange) -> None:
        """Every consent change is appended in its own transaction: both land or neither."""
        self.audit.append_in(session, registry_entry(change, self._hasher()))

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._observer is not None:
                self._observer.observe_stage(stage, time.perf_counter() - start)

    def close(self) -> None:
        self.db.dispose()

    # reading images --------------------------------------------------------------------------

    def decode(self, data: bytes) -> DecodedImage:
        """Decode an image under this guard's caps (bytes, pixels, frames)."""
        settings = self.settings
        return decode_image(
            data,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            allow_multiframe=settings.allow_multiframe,
        )

    def faces_in(self, data: bytes) -> list[Face]:
        """The faces in an image (enrollment and reference photos)."""
        return self.face_engine.detect_and_embed(self.decode(data).rgb)

    # flows -----------------------------------------------------------------------------------

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

    def edit(self, request: EditRequest, *, progress: ProgressCallback | None = None) -> Result:
        """Gate the input, run the editor, scan the output, stamp and return it if allowed.

        ``progress(done, total)`` is told the editor's steps as it runs."""
        editor = self.editor
        if request.operation not in editor.operations:
            raise InvalidInput(
                f"editor '{editor.name}' has no operation '{request.operation}'; "
                f"choose one of {sorted(editor.operations)}"
            )
        record = editor.describe(request.operation, request.params, request.prompt)
        decoded = self.decode(request.image)
        gate = self._gate(
            decoded, requester=request.requester, operation=request.operation, prompt=request.prompt
        )
        input_receipt = self._record(
            gate.decision, request.requester, request.operation, decoded.sha256
        )
        if not gate.decision.allowed:
            return Result(
                decision=gate.decision,
                input_decision=gate.decision,
                output_decision=None,
                image=None,
                input_sha256=decoded.sha256,
                output_sha256=None,
                editor=editor.name,
                receipts=(input_receipt,),
                editor_record=record,
            )
        with self._timed("edit"):
            edited = editor.edit(
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
            software_agent=SoftwareAgent(editor.name, editor.version),
            parent=parent_ingredient(decoded, request.image),
            editor_record=record,
        )
        decision, stamped, receipts = self._audited_release(
            edited, request.output_format, context, request.requester, decoded.sha256, gate.decision
        )
        return Result(
            decision=decision,
            input_decision=gate.decision,
            output_decision=decision,
            image=stamped.data if stamped else None,
            input_sha256=decoded.sha256,
            output_sha256=stamped.sha256 if stamped else None,
            editor=editor.name,
            provenance=stamped,
            receipts=(input_receipt, *receipts),
            editor_record=record,
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
        parent = None
        if request.source_image is not None:
            parent = parent_ingredient(self.decode(request.source_image), request.source_image)
        context = StampContext(
            decision=gate.decision,
            operation=request.operation,
            software_agent=SoftwareAgent(request.generator, request.generator_version),
            parent=parent,
        )
        output_format = request.output_format or web_format(decoded.source_format)
        decision, stamped, receipts = self._audited_release(
            decoded.rgb, output_format, context, request.requester, decoded.sha256, gate.decision
        )
        return Result(
            decision=decision,
            input_decision=decision,
            output_decision=decision,
            image=stamped.data if stamped else None,
            input_sha256=decoded.sha256,
            output_sha256=stamped.sha256 if stamped else None,
            editor=request.generator,
            provenance=stamped,
            receipts=receipts,
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
            policy = self.policies.current()
            blocklist = self.blocklists.current()
            self._in_force.record(policy, blocklist)
            matcher = self._matcher(blocklist)
            with self._timed("faces"):
                faces = self.face_engine.detect_and_embed(decoded.rgb) if decoded else []
            with self._timed("match"):
                facts = matcher.facts_for(faces, requester=requester)
                figures = self._screens.figures(
                    prompt,
                    (id(blocklist), blocklist.generation, len(blocklist)),
                    blocklist.figures.values(),
                )
                named = self._screens.subjects(
                    prompt, tenant_of(requester), self.registry.named_subjects
                )
                subjects = matcher.prompt_subjects(
                    ((m.identity_id, m.evidence()) for m in named), requester=requester
                )
            nsfw = self._nsfw_score(decoded.rgb if decoded else None)
            request_facts = RequestFacts(
                stage=stage,
                requester=requester,
                operation=operation,
                faces=with_unreadable(facts, faces, nsfw),
                prompt_figures=tuple(m.identity_id for m in figures),
                prompt_mentions={m.identity_id: m.evidence() for m in figures},
                prompt_subjects=subjects,
                nsfw_score=nsfw.score if nsfw else None,
                nsfw_labels=nsfw.labels if nsfw else (),
            )
            return _Gate(decide(policy, request_facts), faces, matcher, policy)
        except Unavailable as exc:
            return _Gate(deny_unavailable(exc.message, stage=stage, policy=policy), policy=policy)

    def _matcher(self, blocklist: Blocklist) -> Matcher:
        engine, settings = self.face_engine, self.settings
        return Matcher(
            self.registry,
            blocklist,
            engine=engine,
            registry_threshold=settings.registry_threshold(engine.name),
            blocklist_threshold=settings.blocklist_threshold(engine.name),
            near_miss_margin=settings.near_miss_margin(engine.name),
        )

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
            nsfw = self._nsfw_score(edited)
            return decide(
                gate.policy,
                RequestFacts(
                    stage="output",
                    requester=request.requester,
                    operation=request.operation,
                    faces=with_unreadable(facts, output_faces, nsfw),
                    drift=drift_facts(gate.faces, checked, output_faces, threshold=threshold),
                    appeared=appeared_faces(gate.faces, output_faces, threshold=threshold),
                    nsfw_score=nsfw.score if nsfw else None,
                    nsfw_labels=nsfw.labels if nsfw else (),
                    carried_conditions=gate.decision.conditions,
                ),
            )
        except Unavailable as exc:
            return deny_unavailable(exc.message, stage="output", policy=gate.policy)

    def _release(
        self,
        rgb: RGBImage,
        output_format: OutputFormat,
        context: StampContext,
        *,
        grants_from: Decision,
    ) -> tuple[Decision, StampedImage | None]:
        """Watermark, sign and store an allowed output; withhold it (deny) if that fails."""
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
            return self.policies.current()
        except Unavailable:
            return None

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
            withheld = self._record(decision, requester, operation, input_sha256)
            return decision, None, (decided, withheld)
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
                decision=decision,
                requester=requester,
                operation=operation,
                input_sha256=input_sha256,
                output_sha256=stamped.sha256,
                watermark_record_id=stamped.record_id,
                manifest_label=stamped.manifest_label,
                receipt=released,
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
                DecisionEvent(
                    decision=decision,
                    requester=requester,
                    operation=operation,
                    input_sha256=input_sha256,
                    receipt=receipt,
                )
            )
        return receipt

    def _notify(self, event: DecisionEvent) -> None:
        for sink in self._sinks:
            sink.record(event)
