"""Who is in the picture: the consent registry, the public-figure blocklist and the matcher."""

from __future__ import annotations

from guard.identity.blocklist import (
    Blocklist,
    BlocklistSaved,
    FigureCandidate,
    PublicFigure,
)
from guard.identity.blocklist_store import BlocklistPrepared, BlocklistStore
from guard.identity.building import (
    BuildProblem,
    build_from_embeddings,
    build_from_folder,
    reference_face,
)
from guard.identity.confirmation import ConfirmationToken, ConsentConfirmations
from guard.identity.consent_requests import (
    Accepted,
    ConsentRequest,
    ConsentRequests,
    IssuedConsentRequest,
    RequestStatus,
)
from guard.identity.enrollment import EnrollmentRules, EnrollmentScreen
from guard.identity.key_check import check_template_key
from guard.identity.management_links import LinkHolder, ManagementLink, ManagementLinks
from guard.identity.matcher import FaceFacts, Match, Matcher, MatchKind, PromptSubject
from guard.identity.records import (
    ConsentGrant,
    ConsentLevel,
    Erasure,
    GrantStatus,
    PublicFigureLink,
    RegistryChange,
    Subject,
    SubjectCandidate,
)
from guard.identity.registry import ConsentRegistry
from guard.identity.signed_tokens import LinkExpired, LinkUsed
from guard.identity.tenancy import check_requester, check_tenant, in_tenant, tenant_of

__all__ = [
    "Accepted",
    "Blocklist",
    "BlocklistPrepared",
    "BlocklistSaved",
    "BlocklistStore",
    "BuildProblem",
    "ConfirmationToken",
    "ConsentConfirmations",
    "ConsentGrant",
    "ConsentLevel",
    "ConsentRegistry",
    "ConsentRequest",
    "ConsentRequests",
    "EnrollmentRules",
    "EnrollmentScreen",
    "Erasure",
    "FaceFacts",
    "FigureCandidate",
    "GrantStatus",
    "IssuedConsentRequest",
    "LinkExpired",
    "LinkHolder",
    "LinkUsed",
    "ManagementLink",
    "ManagementLinks",
    "Match",
    "MatchKind",
    "Matcher",
    "PromptSubject",
    "PublicFigure",
    "PublicFigureLink",
    "RegistryChange",
    "RequestStatus",
    "Subject",
    "SubjectCandidate",
    "build_from_embeddings",
    "build_from_folder",
    "check_requester",
    "check_template_key",
    "check_tenant",
    "in_tenant",
    "reference_face",
    "tenant_of",
]
