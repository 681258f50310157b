"""``/v1/audit``: the tamper-evident log, read-only, for admins and auditors.

The tree (checkpoints, consistency proofs from any earlier checkpoint) is global; entries are
tenant-scoped: a key sees its tenant's entries and the global ones (policy and blocklist in
force), and asking for another tenant's entry answers 404. Every entry can be proved against the
latest signed checkpoint and verified offline with the public key in ``verifier_key``.

Checkpoints are signed once per committed batch of appends (group commit), so only batch ends
have one: a ``size`` (``proof?size=``, ``consistency?to=``) where no batch ended answers 404
naming the nearest checkpointed sizes, never a proof against a tree nobody signed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import StreamingResponse

from guard.api.auth import READERS, require, service_of
from guard.api.keys import ApiKey
from guard.api.routes.common import COMMON_ERRORS, CONFLICT, NOT_FOUND, Responses
from guard.api.schemas import (
    CheckpointOut,
    ConsistencyProofOut,
    EntriesOut,
    EntryOut,
    ReceiptOut,
)
from guard.api.views import receipt_body
from guard.audit import AuditLog, CheckpointVerifier, audit_verifier_key
from guard.errors import InvalidInput, NotFound

router = APIRouter(prefix="/v1/audit", tags=["audit"])
_reader = require(*READERS)
_READ: Responses = {**COMMON_ERRORS, **NOT_FOUND}
PAGE = 1000
MAX_INDEX = 2**62  # fits every database's 64-bit integer
Index = Annotated[int, Path(ge=0, le=MAX_INDEX)]


def _visible_entry(log: AuditLog, index: int, key: ApiKey) -> dict[str, Any]:
    entry = log.entry(index)
    if entry.get("tenant", key.tenant) != key.tenant:
        raise NotFound(f"no audit entry {index} in tenant {key.tenant}")
    return entry


@router.get("/checkpoint", response_model=CheckpointOut, responses=_READ)
def checkpoint(request: Request, _key: Annotated[ApiKey, Depends(_reader)]) -> Any:
    """The latest signed checkpoint (C2SP signed note) and the key that verifies it."""
    service = service_of(request)
    log = service.guard.audit
    if log.size() == 0:
        raise NotFound("the audit log is empty: no checkpoint yet")
    note = log.checkpoint()
    vkey = audit_verifier_key(service.settings)
    verified = CheckpointVerifier.from_key_string(vkey).verify(note)
    return {"size": verified.size, "checkpoint": note, "verifier_key": vkey}


@router.get("/entries", response_model=EntriesOut, responses=COMMON_ERRORS)
def entries(
    request: Request,
    key: Annotated[ApiKey, Depends(_reader)],
    start: Annotated[int, Query(ge=0, le=MAX_INDEX)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE)] = 100,
) -> Any:
    """This tenant's entries (and the global ones) from index ``start`` on."""
    found = service_of(request).guard.audit.entries(start=start, limit=limit, tenant=key.tenant)
    next_start = found[-1][0] + 1 if len(found) == limit else None
    return {"entries": [{"index": i, "entry": e} for i, e in found], "next_start": next_start}


@router.get("/entries/{index}", response_model=EntryOut, responses=_READ)
def entry(request: Request, index: Index, key: Annotated[ApiKey, Depends(_reader)]) -> Any:
    return {"index": index, "entry": _visible_entry(service_of(request).guard.audit, index, key)}


@router.get("/entries/{index}/proof", response_model=ReceiptOut, responses=_READ)
def proof(
    request: Request,
    index: Index,
    key: Annotated[ApiKey, Depends(_reader)],
    size: Annotated[int | None, Query(ge=1, le=MAX_INDEX)] = None,
) -> Any:
    """A receipt for the entry against the checkpoint at ``size`` (default: the latest); 404
    naming the nearest checkpointed sizes if no batch of appends ended at ``size``."""
    log = service_of(request).guard.audit
    _visible_entry(log, index, key)
    return receipt_body(log.receipt(index, size))


@router.get("/decisions/{decision_id}/receipt", response_model=ReceiptOut, responses=_READ)
def decision_receipt(
    request: Request, decision_id: str, key: Annotated[ApiKey, Depends(_reader)]
) -> Any:
    log = service_of(request).guard.audit
    try:
        receipt = log.receipt_for_decision(decision_id)
        _visible_entry(log, receipt.leaf_index, key)
    except NotFound:
        # One answer for "no such decision" and "another tenant's": decision ids are printed
        # in the manifests of released images, so the index must not leak either.
        raise NotFound(f"no decision {decision_id} in tenant {key.tenant}") from None
    return receipt_body(receipt)


@router.get("/consistency", response_model=ConsistencyProofOut, responses={**_READ, **CONFLICT})
def consistency(
    request: Request,
    _key: Annotated[ApiKey, Depends(_reader)],
    from_size: Annotated[
        int | None,
        Query(alias="from", ge=0, le=MAX_INDEX, description="The size of a checkpoint held."),
    ] = None,
    to_size: Annotated[
        int | None,
        Query(
            alias="to",
            ge=1,
            le=MAX_INDEX,
            description="The newer size (default: latest); it must have a checkpoint.",
        ),
    ] = None,
    old_size: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description="The older name of `from`.")
    ] = None,
    new_size: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description="The older name of `to`.")
    ] = None,
) -> Any:
    """Proof that the tree at ``to`` (default: the latest) extends the tree at ``from``, any
    earlier checkpoint's size (RFC 9162), with the signed checkpoint at ``to``: a client holding
    an earlier checkpoint checks both offline (``guard.audit.check_consistency_answer``). 409
    when ``from`` is beyond the log: the log shrank since that checkpoint was signed; 404
    naming the nearest checkpointed sizes when no batch of appends ended at ``to``."""
    old = _one_of("from", from_size, "old_size", old_size)
    if old is None:
        raise InvalidInput("give `from`, the size of the checkpoint you hold")
    new = _one_of("to", to_size, "new_size", new_size)
    return service_of(request).guard.audit.prove_consistency(old, new).to_dict()


def _one_of(name: str, value: int | None, old_name: str, old_value: int | None) -> int | None:
    if value is not None and old_value is not None and value != old_value:
        raise InvalidInput(f"`{name}` and `{old_name}` name the same size; they differ")
    return value if value is not None else old_value


@router.get(
    "/export",
    responses={
        **COMMON_ERRORS,
        200: {"content": {"application/x-ndjson": {}}, "description": "JSON Lines."},
    },
)
def export(request: Request, key: Annotated[ApiKey, Depends(_reader)]) -> StreamingResponse:
    """This tenant's view of the log as JSON Lines: one line per visible entry with a receipt
    against the checkpoint current when the export began, so each line verifies offline
    (``verify_receipt``) without the other tenants' entries."""
    log = service_of(request).guard.audit
    size = log.size()

    def lines() -> Iterator[bytes]:
        start = 0
        while start < size:
            page = log.entries(start=start, limit=PAGE, tenant=key.tenant)
            page = [(i, e) for i, e in page if i < size]
            for index, item in page:
                receipt = receipt_body(log.receipt(index, size))
                yield (
                    json.dumps({"index": index, "entry": item, "receipt": receipt}) + "\n"
                ).encode()
            if len(page) < PAGE:
                break
            start = page[-1][0] + 1

    return StreamingResponse(lines(), media_type="application/x-ndjson")
