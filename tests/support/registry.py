"""Registry and blocklist set-ups on real photos: a consenting model, two public figures."""

from __future__ import annotations

import hashlib

from guard import Guard
from guard.faces import Face
from guard.identity import Blocklist
from guard.samples import SampleName, sample_bytes
from tests.support.photos import ENROLL, crop

REQUESTER = "acme/photo-app"
EVIDENCE = hashlib.sha256(b"signed consent form").hexdigest()


_REFERENCE_FACES: dict[tuple[str, str], Face] = {}


def reference_face(guard: Guard, sample: SampleName) -> Face:
    """The one face of a bundled photo, detected once per engine per session: the engines are
    deterministic, and many tests put the same two figures on their blocklist."""
    key = (guard.face_engine.name, sample)
    if key not in _REFERENCE_FACES:
        _REFERENCE_FACES[key] = guard.faces_in(sample_bytes(sample))[0]
    return _REFERENCE_FACES[key]


def blocklist_public_figures(guard: Guard) -> None:
    """Tom Hanks and Eileen Collins (the astronaut) on ``guard``'s blocklist, with aliases."""
    samples: tuple[tuple[str, str, SampleName], ...] = (
        ("tom-hanks", "Tom Hanks", "tom_hanks"),
        ("eileen-collins", "Eileen Collins", "astronaut"),
    )
    figures = [
        (figure_id, name, reference_face(guard, sample)) for figure_id, name, sample in samples
    ]

    def add(blocklist: Blocklist) -> None:
        for figure_id, name, face in figures:
            blocklist.add_figure(figure_id, name, [face.embedding], aliases=[name.split()[-1]])

    guard.blocklists.update(add)


def enroll_model(
    guard: Guard, *, scopes: tuple[str, ...] = ("relight", "background_blur")
) -> tuple[str, str]:
    """The woman on the left of t1.jpg enrolled in tenant acme, granting REQUESTER ``scopes``:
    ``(subject_id, grant_id)``."""
    subject = guard.registry.create_subject("acme", display_name="Model A")
    guard.registry.enroll(subject.id, guard.faces_in(crop("t1", ENROLL)))
    grant = guard.registry.grant(
        subject.id, grantee=REQUESTER, scopes=scopes, evidence_sha256=EVIDENCE
    )
    return subject.id, grant.id


def link_to_figure(guard: Guard, subject_id: str, figure_id: str) -> None:
    """``subject_id`` linked to blocklisted ``figure_id``, as an operator does (with evidence)."""
    figure = guard.blocklists.current().figure(figure_id)
    guard.registry.public_figures.link(
        subject_id, figure, linked_by="cli:test-operator", evidence_sha256=EVIDENCE
    )


def confirm_by_the_person(guard: Guard, grant_id: str) -> None:
    """The person confirms ``grant_id`` themselves (what their consent page does)."""
    confirmations = guard.registry.confirmations
    confirmations.redeem(confirmations.issue(grant_id).token)
