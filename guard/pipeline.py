"""``Guard``: composes the stages for ``check`` (input gate), ``edit`` (gate, edit, output scan,
provenance), ``stamp`` (scan and provenance for an image made elsewhere) and ``verify``.

    >>> from guard import Guard, EditRequest
    >>> guard = Guard()                                                 # doctest: +SKIP
    >>> result = guard.edit(EditRequest(image=photo_bytes, operation="relight",
    ...                                 requester="acme/app"))          # doctest: +SKIP
    >>> result.decision.verdict, len(result.image or b"")               # doctest: +SKIP
    (<Verdict.ALLOW_WITH_CONDITIONS: 'allow_with_conditions'>, 812345)

This module decides nothing itself: ``gate.py`` gathers the facts (faces from ``faces``,
identities from ``identity``, prompt and output screening from ``safety``) and asks ``policy``;
``editors`` make the pixels; ``recording.py`` audits every decision before anyone sees it and
releases an allowed output only once it is watermarked, signed (C2PA) and stored, withholding it
(``deny``, reason ``unavailable``) when that cannot happen. Anything a decision depends on that
cannot be read (registry, blocklist, policy, keys) yields a ``deny`` with reason
``unavailable``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from guard.audit import (
    AuditLog,
    InForceRecorder,
    Receipt,
    blocklist_entry,
    open_audit_log,
    registry_entry,
)
from guard.config import Settings
from guard.db import Database
from guard.devices import configure_blas_threads, configure_faiss_threads
from guard.editors import Editor, ProgressCallback, create_editor
from guard.faces import Face, FaceEngine, create_face_engine
from guard.gate import Gate
from guard.identity import (
    BlocklistSaved,
    BlocklistStore,
    ConsentRegistry,
    EnrollmentRules,
    EnrollmentScreen,
    RegistryChange,
    check_template_key,
)
from guard.media import DecodedImage, decode_image, web_format
from guard.policy import (
    Decision,
    PolicySource,
)
from guard.provenance import (
    Provenance,
    SoftwareAgent,
    StampContext,
    VerificationReport,
    parent_ingredient,
)
from guard.recording import (
    DecisionRecorder,
    Release,
    StageTimer,
    enqueuing,
    finishing,
    result_of,
)
from guard.request_checks import check_edit, check_stamp_request
from guard.requests import (
    CheckRequest,
    DecisionSink,
    EditPhase,
    EditRequest,
    PhaseCallback,
    Result,
    StageObserver,
    StampRequest,
)
from guard.safety import (
    NsfwClassifier,
)
from guard.secrets import KeyedHasher, Keyring, TemplateCipher


def _ignore_phase(_phase: EditPhase) -> None:
    """The phase callback of a caller that did not ask for one."""


class Guard:
    """The library entry point. Thread-safe; build one per process and reuse it.

    The flows are :meth:`check`, :meth:`edit`, :meth:`stamp` and :meth:`verify`. The services
    they compose are its administration surface (the HTTP service and the CLI use them too):

    - ``settings`` (:class:`~guard.config.Settings`) and ``db`` (the database);
    - ``keys`` (:class:`~guard.secrets.Keyring`): the HMAC and template keys, re-read when
      their files change;
    - ``registry`` (:class:`~guard.identity.ConsentRegistry`): subjects, templates, grants;
    - ``blocklists`` (:class:`~guard.identity.BlocklistStore`): ``current()``, ``update()``
      (in the database; each process polls it, ``GUARD_BLOCKLIST_POLL_S``);
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
        configure_blas_threads(self.settings.blas_threads)
        self.db = Database.from_settings(self.settings)
        self.keys = Keyring(self.settings)
        self.face_engine = face_engine or create_face_engine(self.settings)
        self.policies = PolicySource(self.settings.policy_file)
        self.provenance = provenance or Provenance(self.settings, self.db)
        self.audit = audit or open_audit_log(self.settings, self.db)
        self.blocklists = BlocklistStore(
            self.db,
            self.keys.cipher,
            poll_s=self.settings.blocklist_poll_s,
            legacy_dir=self.settings.blocklist_path,
            on_saved=self._audit_blocklist_change,
        )
        self._editor = editor
        self._timed = StageTimer(observer)
        self._recorder = DecisionRecorder(
            self.audit,
            self.provenance,
            hasher=self._hasher,
            policy=self.policies.current,
            sinks=sinks,
            timed=self._timed,
        )
        self._gate = Gate(
            self.settings,
            self.face_engine,
            registry=lambda: self.registry,
            blocklists=self.blocklists,
            policies=self.policies,
            in_force=InForceRecorder(self.audit),
            nsfw=nsfw,
            timed=self._timed,
        )
        self._registry: ConsentRegistry | None = None
        self._registry_keys: tuple[TemplateCipher, KeyedHasher] | None = None
        self._registry_lock = threading.Lock()
        self._editor_lock = threading.Lock()

    # services --------------------------------------------------------------------------------

    @property
    def registry(self) -> ConsentRegistry:
        """The consent registry (raises :class:`Unavailable` if its keys or schema are missing).

        Built around the keys as they are now: when a key file changed on disk the registry is
        built again, once the new template key has decrypted a stored template (else every use
        raises :class:`Unavailable` naming the file until the right key is back)."""
        keys = (self.keys.cipher(), self.keys.hasher())
        with self._registry_lock:
            if self._registry is None or self._registry_keys != keys:
                self.db.require_schema()
                check_template_key(self.db, keys[0])
                self._registry = ConsentRegistry(
                    self.db,
                    keys[0],
                    keys[1],
                    engine_name=self.face_engine.name,
                    dimension=self.face_engine.dimension,
                    on_change=self._audit_registry_change,
                    screen=self._enrollment_screen(),
                )
                self._registry_keys = keys
            return self._registry

    def _enrollment_screen(self) -> EnrollmentScreen:
        settings, engine = self.settings, self.face_engine.name
        rules = EnrollmentRules(
            blocklist_threshold=settings.blocklist_threshold(engine),
            registry_threshold=settings.registry_threshold(engine),
            same_person_threshold=settings.drift_threshold(engine),
            min_face_pixels=settings.enroll_min_face_pixels,
            min_detection_score=settings.enroll_min_detection_score(engine),
        )
        return EnrollmentScreen(rules, self.blocklists.current)

    @property
    def editor(self) -> Editor:
        """The editor (``GUARD_EDITOR``), made on first use: a diffusers editor hashes its
        weights, which commands that never edit should not wait for."""
        with self._editor_lock:
            if self._editor is None:
                self._editor = create_editor(self.settings)
            return self._editor

    def _hasher(self) -> KeyedHasher:
        """The HMAC key as it is now (every decision and consent change uses it): re-read when
        its file changed; a missing or weak key is :class:`Unavailable` on each call until
        fixed."""
        return self.keys.hasher()

    def check_template_key(self) -> None:
        """Readiness: the template key is usable and decrypts a stored template
        (:class:`Unavailable` naming the file or setting if not)."""
        self.db.require_schema()
        check_template_key(self.db, self.keys.cipher())

    def _audit_blocklist_change(self, saved: BlocklistSaved) -> None:
        """Every saved blocklist change, with who made it (after the save: a failed append
        raises :class:`Unavailable`, and the next decision still records the generation)."""
        self.audit.append(blocklist_entry(saved))

    def _audit_registry_change(self, session: Session, change: RegistryChange) -> None:
        """Every consent change is appended in its own transaction: both land or neither."""
        self.audit.append_in(session, registry_entry(change, self._hasher()))

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
            max_aspect_ratio=settings.max_image_aspect_ratio,
            max_decoded_bytes=settings.max_decoded_image_bytes,
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
        gate = self._gate.decide_input(
            decoded.rgb if decoded else None,
            requester=request.requester,
            operation=request.operation,
            prompt=request.prompt,
        )
        receipt = self._recorder.record(
            gate.decision, request.requester, request.operation, decoded.sha256 if decoded else None
        )
        return gate.decision, receipt

    def admit_edit(
        self, request: EditRequest, *, enqueue: Callable[[Session, Decision, Receipt], None]
    ) -> tuple[Decision, Receipt]:
        """The input gate of an edit that runs later (a job): the edit is checked as
        :meth:`edit` checks it, its input decided and audited; when allowed, ``enqueue(session,
        decision, receipt)`` writes in the decision's own transaction (the job and its queue
        entry), so an admitted edit is never lost and a denied one never becomes a job."""
        check_edit(request, self.editor)
        decoded = self.decode(request.image)
        gate = self._gate.decide_input(
            decoded.rgb,
            requester=request.requester,
            operation=request.operation,
            prompt=request.prompt,
        )
        receipt = self._recorder.record(
            gate.decision,
            request.requester,
            request.operation,
            decoded.sha256,
            within=enqueuing(enqueue, gate.decision) if gate.decision.allowed else None,
        )
        return gate.decision, receipt

    def edit(
        self,
        request: EditRequest,
        *,
        progress: ProgressCallback | None = None,
        phase: PhaseCallback | None = None,
        finish: Callable[[Session, Result], None] | None = None,
    ) -> Result:
        """Gate the input, run the editor, scan the output, stamp and return it if allowed.

        ``phase(name)`` is told each :data:`~guard.requests.EditPhase` as it starts, so a
        progress display says "editing" only once the editor runs; ``progress(done, total)`` is
        told the editor's steps (either may raise to stop the edit: nothing is released).
        ``finish(session, result)`` writes in the release entry's transaction: if it raises,
        the release is rolled back and nothing was released (a job that lost its claim)."""
        tell = phase or _ignore_phase
        editor = self.editor
        record = check_edit(request, editor)
        tell("input_gate")
        decoded = self.decode(request.image)
        gate = self._gate.decide_input(
            decoded.rgb if decoded else None,
            requester=request.requester,
            operation=request.operation,
            prompt=request.prompt,
        )
        input_receipt = self._recorder.record(
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
        tell("edit")
        with self._timed("edit"):
            edited = editor.edit(
                decoded.rgb,
                gate.faces,
                request.operation,
                request.params,
                prompt=request.prompt,
                progress=progress,
            )
        tell("output_scan")
        with self._timed("output_scan"):
            scanned = self._gate.decide_output(
                gate, edited, requester=request.requester, operation=request.operation
            )
        if scanned.allowed:
            tell("stamp")
        context = StampContext(
            decision=scanned,
            operation=request.operation,
            software_agent=SoftwareAgent(editor.name, editor.version),
            parent=parent_ingredient(decoded, request.image),
            editor_record=record,
        )

        def edit_result(released: Release) -> Result:
            return result_of(
                released,
                input_decision=gate.decision,
                input_sha256=decoded.sha256,
                editor=editor.name,
                earlier=(input_receipt,),
                editor_record=record,
            )

        along = None if finish is None else finishing(finish, edit_result)
        released = self._recorder.release(
            edited,
            request.output_format,
            context,
            requester=request.requester,
            input_sha256=decoded.sha256,
            grants_from=gate.decision,
            finish=along,
        )
        return edit_result(released)

    def stamp(self, request: StampRequest) -> Result:
        """Scan an image another generator made; watermark, sign and return it if allowed."""
        # The generator's names go into the signed manifest: refused now if they cannot be,
        # not once the scan's decision is audited. The source image is read before deciding too.
        check_stamp_request(request)
        decoded = self.decode(request.image)
        parent = None
        if request.source_image is not None:
            parent = parent_ingredient(self.decode(request.source_image), request.source_image)
        gate = self._gate.decide_input(
            decoded.rgb,
            requester=request.requester,
            operation=request.operation,
            prompt=request.prompt,
            stage="output",
        )
        context = StampContext(
            decision=gate.decision,
            operation=request.operation,
            software_agent=SoftwareAgent(request.generator, request.generator_version),
            parent=parent,
        )
        output_format = request.output_format or web_format(decoded.source_format)
        released = self._recorder.release(
            decoded.rgb,
            output_format,
            context,
            requester=request.requester,
            input_sha256=decoded.sha256,
            grants_from=gate.decision,
        )
        # A stamp has one decision: the scan of the image it was given is its input and output.
        return result_of(
            released,
            input_decision=released.decision,
            input_sha256=decoded.sha256,
            editor=request.generator,
        )

    def verify(self, data: bytes) -> VerificationReport:
        """Is ``data`` an output of this guard, untouched, and under which decision?"""
        return self.provenance.verify(data, self.decode)
