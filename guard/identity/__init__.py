"""Who is in the picture: the consent registry, the public-figure blocklist and the matcher."""

from __future__ import annotations

from guard.identity.blocklist import (
    PHOTO_SUFFIXES,
    Blocklist,
    BlocklistStore,
    BuildProblem,
    FigureCandidate,
    PublicFigure,
    build_from_embeddings,
    build_from_folder,
    reference_face,
)
from guard.identity.matcher import FaceFacts, Match, Matcher, MatchKind
from guard.identity.registry import (
    ConsentGrant,
    ConsentRegistry,
    Erasure,
    GrantStatus,
    RegistryChange,
    Subject,
    SubjectCandidate,
    tenant_of,
)

__all__ = [
    "PHOTO_SUFFIXES",
    "Blocklist",
    "BlocklistStore",
    "BuildProblem",
    "ConsentGrant",
    "ConsentRegistry",
    "Erasure",
    "FaceFacts",
    "FigureCandidate",
    "GrantStatus",
    "Match",
    "MatchKind",
    "Matcher",
    "PublicFigure",
    "RegistryChange",
    "Subject",
    "SubjectCandidate",
    "build_from_embeddings",
    "build_from_folder",
    "reference_face",
    "tenant_of",
]
