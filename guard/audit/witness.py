"""A witness of one audit log: remember the last checkpoint seen, accept only extensions of it.

The shape of a C2SP witness (https://c2sp.org/tlog-witness), run by an auditor next to, not
inside, the guard: its state is one file holding the last signed checkpoint it verified; given a
new checkpoint it checks the log's signature, asks for (or is given) a consistency proof from the
stored size to the new one, and replaces the state, atomically and under a lock, only if the new
tree extends the stored one. A rollback (smaller tree), a fork (same size and another root, or a
proof that does not verify) or a checkpoint naming another log leaves the state as it was and
keeps the offending checkpoint next to it as evidence (``<state>.rejected``): two checkpoints the
log signed that cannot both be true.

What it does not do: it does not cosign (no witness key, no tlog-cosignature lines, no
``add-checkpoint`` HTTP endpoint for the log to call), it watches one log per state file, it does
not compare notes with other witnesses (a log could still show this witness one history and
someone else another), and a first checkpoint is trusted as it comes (``init``).

    >>> witness = Witness(Path("audit.witness"), verifier)                      # doctest: +SKIP
    >>> witness.observe(HttpLog(url, api_key)).check.verdict                     # doctest: +SKIP
    <Verdict.EXTENDS: 'extends'>
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from guard.audit.checkpoint import Checkpoint, CheckpointVerifier
from guard.audit.history import (
    HistoryCheck,
    Verdict,
    check_extension,
    checkpoint_note,
    compare_sizes,
    parse_proof,
)
from guard.errors import Conflict, InvalidInput, Unavailable


class LogSource(Protocol):
    """Where a witness gets the new checkpoint and the proof that it extends the stored one."""

    def checkpoint(self) -> str:
        """The new signed checkpoint (a C2SP signed note)."""
        ...

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 6962 consistency proof from ``old_size`` to ``new_size``."""
        ...


@dataclass(frozen=True)
class GivenCheckpoint:
    """A checkpoint and, when the stored one is older, its proof, both read from files (the
    JSON answer of ``GET /v1/audit/consistency`` or ``guard audit consistency --json``)."""

    note: str
    proof_answer: dict[str, Any] | None = None

    def checkpoint(self) -> str:
        return self.note

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        if self.proof_answer is None:
            raise InvalidInput(
                f"the new checkpoint is at size {new_size}, the stored one at {old_size}: give "
                "the consistency proof between them (--proof, the JSON of GET "
                f"/v1/audit/consistency?from={old_size}&to={new_size})"
            )
        return parse_proof(self.proof_answer, old_size, new_size)


@dataclass(frozen=True)
class HttpLog:
    """The guard's service: ``GET /v1/audit/checkpoint`` and ``/v1/audit/consistency`` with an
    auditor's (or admin's) API key. The verifier key the service also returns is never used:
    the witness trusts only the key it was given."""

    url: str
    api_key: str
    timeout: float = 30.0

    def checkpoint(self) -> str:
        note = self._get("/v1/audit/checkpoint", {}).get("checkpoint")
        if not isinstance(note, str):
            raise Unavailable(f"{self.url} answered its checkpoint without one")
        return note

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        answer = self._get("/v1/audit/consistency", {"from": old_size, "to": new_size})
        return parse_proof(answer, old_size, new_size)

    def _get(self, path: str, query: dict[str, int]) -> dict[str, Any]:
        address = self.url.rstrip("/") + path
        if query:
            address += "?" + urllib.parse.urlencode(query)
        if not address.startswith(("http://", "https://")):
            raise InvalidInput(f"the service URL must be http(s)://…, not {self.url!r}")
        request = urllib.request.Request(
            address, headers={"Authorization": f"Bearer {self.api_key}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise Unavailable(f"GET {address}: HTTP {exc.code}: {_detail(exc)}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise Unavailable(f"GET {address}: {exc}") from exc
        if not isinstance(data, dict):
            raise Unavailable(f"GET {address}: the answer is not a JSON object")
        return data


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read())
    except (ValueError, OSError):
        return str(error.reason)
    return str(body.get("detail", error.reason)) if isinstance(body, dict) else str(error.reason)


@dataclass(frozen=True)
class Observation:
    """What one run saw: the stored checkpoint (``None`` on the first run), the new one, and
    whether the new one extends the stored one (``check`` is ``None`` on the first run);
    ``evidence`` is where a rejected checkpoint was kept."""

    previous: Checkpoint | None
    current: Checkpoint
    check: HistoryCheck | None
    evidence: Path | None = None

    @property
    def ok(self) -> bool:
        return self.check is None or self.check.ok


class Witness:
    """The state file at ``state`` (the last verified signed checkpoint, as the log signed it)
    for the log whose key is ``verifier``."""

    def __init__(self, state: Path, verifier: CheckpointVerifier) -> None:
        self.state = state
        self.verifier = verifier

    @property
    def evidence_path(self) -> Path:
        return self.state.with_name(self.state.name + ".rejected")

    def observe(self, source: LogSource, *, init: bool = False) -> Observation:
        """Check the source's checkpoint against the state and keep it if it extends it.
        ``init`` starts a missing state with the source's checkpoint (trusted as it comes);
        without it a missing state is an error, so a lost state file is never silently
        replaced by whatever the log shows now."""
        with self._locked():
            stored_note = self._read_state()
            if stored_note is None and not init:
                raise InvalidInput(
                    f"no witness state at {self.state}: run once with --init to trust the "
                    "log's current checkpoint as the first one"
                )
            if stored_note is not None and init:
                raise Conflict(
                    f"the witness state {self.state} exists; --init would replace it without "
                    "checking (remove the file yourself to start over)"
                )
            note = source.checkpoint()
            current = self._verified(note, "the new checkpoint")
            if stored_note is None:
                self._replace(note)
                return Observation(None, current, None)
            previous = self._verified(stored_note, f"the witness state {self.state}")
            check = compare_sizes(previous, current) or check_extension(
                previous, current, source.consistency(previous.size, current.size)
            )
            if not check.ok:
                self.evidence_path.write_text(note, encoding="utf-8")
                return Observation(previous, current, check, self.evidence_path)
            if check.verdict is Verdict.EXTENDS:
                self._replace(note)
            return Observation(previous, current, check)

    def _verified(self, note: str, what: str) -> Checkpoint:
        try:
            return self.verifier.verify(note)
        except InvalidInput as exc:
            raise InvalidInput(f"{what}: {exc.message}") from exc

    def _read_state(self) -> str | None:
        try:
            return checkpoint_note(self.state.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InvalidInput(f"cannot read the witness state {self.state}: {exc}") from exc

    def _replace(self, note: str) -> None:
        """Write the new state beside the old, flush it to disk, then rename it over the old:
        a crash leaves the old state or the new, never half of one."""
        temporary = self.state.with_name(f".{self.state.name}.{os.getpid()}.tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(note)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.state)
        directory = os.open(self.state.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One run at a time per state: the check and the replace must be one step, or two
        runs could each pass the check and the older one overwrite the newer (tlog-witness)."""
        self.state.parent.mkdir(parents=True, exist_ok=True)
        lock = self.state.with_name(self.state.name + ".lock")
        with lock.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
