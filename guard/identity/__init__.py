"""Who is in the picture: the consent registry, the public-figure blocklist and the matcher."""

from __future__ import annotations

from guard.identity.blocklist import Blocklist, BlocklistStore, FigureCandidate, PublicFigure
from guard.identity.building import (
    BuildProblem,
    build_from_embeddings,
    build_from_folder,
    reference_face,
)
from guard.identity.matcher import FaceFacts, Match, Matcher, MatchKind, PromptSubject
from guard.identity.records import (
    ConsentGrant,
    Erasure,
    GrantStatus,
    RegistryChange,
    Subject,
    SubjectCandidate,
)
from guard.identity.registry import ConsentRegistry
from guard.identity.tenancy import in_tenant, tenant_of

__all__ = [
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
    "PromptSubject",
    "PublicFigure",
    "RegistryChange",
    "Subject",
    "SubjectCandidate",
    "build_from_embeddings",
    "build_from_folder",
    "in_tenant",
    "reference_face",
    "tenant_of",
]
