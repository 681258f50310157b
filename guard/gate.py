"""The gate: gathers the facts a decision needs (faces, identities, prompt mentions, NSFW,
drift) from the stages and asks the policy. ``Guard`` (pipeline.py) runs it on every input and,
after an edit, on the output.

Anything a decision depends on that cannot be read (registry, blocklist, policy, keys,
classifier) yields a ``deny`` with reason ``unavailable``: the gate never errs open.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from guard.audit import InForceRecorder
from guard.config import Settings
from guard.errors import InvalidInput, Unavailable
from guard.faces import BBox, Face, FaceEngine
from guard.identity import Blocklist, BlocklistStore, ConsentRegistry, Matcher, tenant_of
from guard.media import RGBImage
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
from guard.recording import StageTimer
from guard.requests import check_request_text
from guard.safety import (
    NsfwClassifier,
    NsfwScore,
    NudeNetClassifier,
    PromptScreens,
    UnreadableFaces,
    appeared_faces,
    drift_facts,
    with_unreadable,
)


@dataclass(frozen=True)
class GateOutcome:
    """The input gate's decision, and what the output scan compares the edit with."""

    decision: Decision
    faces: Sequence[Face] = ()
    matcher: Matcher | None = None
    policy: Policy | None = None


class Gate:
    """Decides a request (input gate) and an edited image (output scan).

    ``registry`` is a callable because the registry opens lazily (it raises
    :class:`Unavailable` while its keys or schema are missing); so does the NSFW classifier.
    """

    def __init__(
        self,
        settings: Settings,
        face_engine: FaceEngine,
        *,
        registry: Callable[[], ConsentRegistry],
        blocklists: BlocklistStore,
        policies: PolicySource,
        in_force: InForceRecorder,
        nsfw: NsfwClassifier | None = None,
        timed: StageTimer,
    ) -> None:
        self._settings = settings
        self._engine = face_engine
        self._registry = registry
        self._blocklists = blocklists
        self._policies = policies
        self._in_force = in_force
        self._nsfw = nsfw
        self._timed = timed
        self._screens = PromptScreens()
        self._unreadable_faces = UnreadableFaces()

    def decide_input(
        self,
        rgb: RGBImage | None,
        *,
        requester: str,
        operation: str,
        prompt: str,
        stage: Stage = "input",
    ) -> GateOutcome:
        """The decision on a request: its image (if any), its prompt, who asks for what."""
        settings = self._settings
        if not requester.strip():
            raise InvalidInput("requester (the grantee asking for the edit) must not be empty")
        check_request_text(requester=requester, operation=operation, prompt=prompt)
        if len(prompt) > settings.max_prompt_chars:
            raise InvalidInput(
                f"the prompt is {len(prompt):,} characters; the limit is "
                f"{settings.max_prompt_chars:,} (GUARD_MAX_PROMPT_CHARS)"
            )
        policy = None
        try:
            policy = self._policies.current()
            blocklist = self._blocklists.current()
            self._in_force.record(policy, blocklist)
            matcher = self._matcher(blocklist)
            nsfw = self._nsfw_score(rgb)
            faces = self._faces(rgb, nsfw)
            with self._timed("match"):
                facts = matcher.facts_for(faces, requester=requester)
                figures = self._screens.figures(
                    prompt,
                    (id(blocklist), blocklist.generation, len(blocklist)),
                    blocklist.figures.values(),
                )
                named = self._screens.subjects(
                    prompt, tenant_of(requester), self._registry().named_subjects
                )
                subjects = matcher.prompt_subjects(
                    ((m.identity_id, m.evidence()) for m in named), requester=requester
                )
            request_facts = RequestFacts(
                stage=stage,
                requester=requester,
                operation=operation,
                faces=with_unreadable(facts, self._unreadable(rgb, nsfw, faces)),
                prompt_figures=tuple(m.identity_id for m in figures),
                prompt_mentions={m.identity_id: m.evidence() for m in figures},
                prompt_subjects=subjects,
                nsfw_score=nsfw.score if nsfw else None,
                nsfw_labels=nsfw.labels if nsfw else (),
            )
            decided = _sized(decide(policy, request_facts), rgb)
            return GateOutcome(decided, faces, matcher, policy)
        except Unavailable as exc:
            denied = deny_unavailable(exc.message, stage=stage, policy=policy)
            return GateOutcome(denied, policy=policy)

    def decide_output(
        self, gate: GateOutcome, edited: RGBImage, *, requester: str, operation: str
    ) -> Decision:
        """The decision on an edit of an allowed input: no blocked or unconsented face appeared,
        each consented person is still the same person, nothing the policy forbids was made."""
        assert gate.matcher is not None and gate.policy is not None  # an allowed gate has both
        try:
            nsfw = self._nsfw_score(edited)
            output_faces = self._faces(edited, nsfw)
            facts = gate.matcher.facts_for(output_faces, requester=requester)
            checked = [
                fd.face_index
                for fd in gate.decision.faces
                if fd.verdict is Verdict.ALLOW and fd.kind != "unknown"
            ]
            threshold = self._settings.drift_threshold(self._engine.name)
            decided = decide(
                gate.policy,
                RequestFacts(
                    stage="output",
                    requester=requester,
                    operation=operation,
                    faces=with_unreadable(facts, self._unreadable(edited, nsfw, output_faces)),
                    drift=drift_facts(gate.faces, checked, output_faces, threshold=threshold),
                    appeared=appeared_faces(gate.faces, output_faces, threshold=threshold),
                    nsfw_score=nsfw.score if nsfw else None,
                    nsfw_labels=nsfw.labels if nsfw else (),
                    carried_conditions=gate.decision.conditions,
                ),
            )
            return _sized(decided, edited)
        except Unavailable as exc:
            return deny_unavailable(exc.message, stage="output", policy=gate.policy)

    def _matcher(self, blocklist: Blocklist) -> Matcher:
        engine, settings = self._engine, self._settings
        return Matcher(
            self._registry(),
            blocklist,
            engine=engine,
            registry_threshold=settings.registry_threshold(engine.name),
            blocklist_threshold=settings.blocklist_threshold(engine.name),
            near_miss_margin=settings.near_miss_margin(engine.name),
        )

    def _faces(self, rgb: RGBImage | None, nsfw: NsfwScore | None) -> list[Face]:
        """Every face the identity engine reads, looking harder where NudeNet saw one."""
        if rgb is None:
            return []
        candidates = [face.box for face in nsfw.faces] if nsfw is not None else None
        with self._timed("faces"):
            return self._engine.detect_and_embed(rgb, candidates=candidates)

    def _unreadable(
        self, rgb: RGBImage | None, nsfw: NsfwScore | None, faces: Sequence[Face]
    ) -> tuple[BBox, ...]:
        """The faces NudeNet saw that the identity engine could not read (unknown faces)."""
        if rgb is None or nsfw is None:
            return ()
        with self._timed("unreadable"):
            return self._unreadable_faces.boxes(rgb, nsfw.faces, faces)

    def _nsfw_score(self, rgb: RGBImage | None) -> NsfwScore | None:
        """The NSFW score of an image and the faces its detector saw (``None``: no image, or
        screening off). The classifier loads on first use; if it cannot, the decision is
        ``unavailable``."""
        if rgb is None or self._settings.nsfw_classifier == "none":
            return None
        if self._nsfw is None:
            self._nsfw = NudeNetClassifier(
                self._settings.device, max_side=self._settings.detect_max_side
            )
        with self._timed("nsfw"):
            return self._nsfw.score(rgb)


def _sized(decision: Decision, rgb: RGBImage | None) -> Decision:
    """``decision`` with the size of the image it was made on (its faces' boxes are in it)."""
    if rgb is None:
        return decision
    height, width = rgb.shape[:2]
    return replace(decision, image_size=(int(width), int(height)))
