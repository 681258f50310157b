"""Where the public-figure blocklist lives: the database, one row per saved generation.

Every host of a deployment reads the one database, so a change saved on one host is enforced by
all of them; nothing a decision needs is on one host's disk. Table ``blocklist_generations``
(migration 0012): the generation number (the primary key), its format, engine, dimension and
counts, the FAISS index encrypted with the template key (``GUARD_TEMPLATE_KEY``: embeddings are
encrypted at rest like templates) with the SHA-256 of its plaintext, the sidecar JSON (ids,
names, aliases, vector ids) with its SHA-256, who saved it and when.

Reading (:meth:`BlocklistStore.current`): each process keeps a read-only replica, the newest
generation it loaded and verified. At most every ``poll_s`` seconds (``GUARD_BLOCKLIST_POLL_S``)
it asks the database for the newest generation number (one primary-key lookup) and loads that
generation when it differs (or the template key changed), so a host enforces another host's
change within ``poll_s``. A generation is verified when a process loads it: decrypted, both
checksums compared, the index parsed. A poll that fails (database unreachable, no generation, a
checksum that does not match, a template key that does not decrypt it) raises
:class:`~guard.errors.Unavailable` and drops the replica: the guard fails closed (every check
denies ``unavailable``) rather than enforce a copy it can no longer confirm is the newest.

Writing (:meth:`BlocklistStore.update`, :meth:`BlocklistStore.replace`): optimistic. A writer
reads the newest generation G, changes it and inserts G + 1; the generation is the primary key,
so of two writers that started from G (on any hosts) exactly one saves and the other gets
:class:`~guard.errors.Conflict` (HTTP 409) with nothing saved: it reads again and reapplies its
change. A caller that read the blocklist earlier passes that ``expected`` generation (HTTP
``If-Match``) and is refused the same way when it moved on. Nothing retries on its own: a change
made on a blocklist the caller has not seen is the caller's to decide on.

The newest three generations keep their index and sidecar; older rows keep only their metadata
(who, when, counts, checksums), so the generation numbers the audit log names stay explained
and numbers are never reused, while the biometric blobs of superseded generations go. Three,
not one: a replica that read the newest number just before two more saves still finds it.

Upgrading from a version that kept the blocklist in files (``<data_dir>/blocklist``): while the
database holds no generation, the first read imports that folder (checksums verified as before)
as its generation, saved by ``import:<folder>`` and audited like any change. The files are left
in place and never read again.

    >>> store = BlocklistStore(db, keys.cipher)                      # doctest: +SKIP
    >>> store.update(lambda b: b.add_figure("tom-hanks", "Tom Hanks", [vector]))  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Integer, LargeBinary, String, Text, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from guard.db import Base, Database, UTCDateTime
from guard.errors import Conflict, Unavailable
from guard.identity.blocklist import (
    FORMAT_VERSION,
    LEGACY_MANIFEST,
    Blocklist,
    BlocklistSaved,
    Encoded,
    PublicFigure,
    decode,
    encode,
    parse_figures,
    read_legacy_folder,
    saved_change,
)
from guard.secrets import TemplateCipher

T = TypeVar("T")
KEEP_BLOBS = 3
"""Generations whose index and sidecar are kept (see the module docstring)."""


class BlocklistGenerationRow(Base):
    __tablename__ = "blocklist_generations"

    generation: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    format: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(32))
    dimension: Mapped[int] = mapped_column(Integer)
    figure_count: Mapped[int] = mapped_column(Integer)
    vector_count: Mapped[int] = mapped_column(Integer)
    index_blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The index encrypted with the template key; NULL once superseded (KEEP_BLOBS)."""
    index_sha256: Mapped[str] = mapped_column(String(64))
    figures_json: Mapped[str | None] = mapped_column(Text)
    figures_sha256: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(Text)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BlocklistPrepared(StrEnum):
    """What :meth:`BlocklistStore.prepare` found or did."""

    EXISTS = "exists"
    CREATED = "created"
    IMPORT_PENDING = "import_pending"


class BlocklistStore:
    """The blocklist in the database, with this process's replica of the newest generation.
    ``cipher`` gives the template key as it is now; ``on_saved`` is told every saved change
    (the guard appends it to the audit log). Thread-safe."""

    def __init__(
        self,
        db: Database,
        cipher: Callable[[], TemplateCipher],
        *,
        poll_s: float = 1.0,
        legacy_dir: Path | None = None,
        on_saved: Callable[[BlocklistSaved], None] | None = None,
    ) -> None:
        self.db = db
        self.poll_s = poll_s
        self.legacy_dir = legacy_dir
        self._cipher = cipher
        self._on_saved = on_saved
        self._lock = threading.Lock()
        # Writers of one process take turns (no conflict among a host's own threads); across
        # processes and hosts the primary key decides.
        self._writes = threading.Lock()
        self._replica: Blocklist | None = None
        self._replica_cipher: TemplateCipher | None = None
        self._polled_at = 0.0

    # reading ---------------------------------------------------------------------------------

    def current(self) -> Blocklist:
        """The newest verified generation as this process last saw it, at most ``poll_s``
        seconds old; never changed in place (a change is a new object). Raises
        :class:`Unavailable` when it cannot be confirmed (see the module docstring)."""
        with self._lock:
            now = time.monotonic()
            if self._replica is not None and now - self._polled_at < self.poll_s:
                return self._replica
            replica, self._replica = self._replica, None  # a failed poll leaves none to serve
            cipher = self._cipher()
            newest = self.newest_generation()
            if (
                replica is None
                or replica.generation != newest
                or cipher is not self._replica_cipher
            ):
                replica = self._load(cipher)
            self._replica, self._replica_cipher, self._polled_at = replica, cipher, now
            return replica

    def load(self) -> Blocklist:
        """Read, decrypt and verify the newest generation (a fresh copy, the caller's to
        change), importing the legacy files first when the database holds none."""
        return self._load(self._cipher())

    def exists(self) -> bool:
        """Whether the database holds a generation."""
        return self.newest_generation() > 0

    def newest_generation(self) -> int:
        """The newest saved generation (0: none). :class:`Unavailable` on a database fault."""
        try:
            with self.db.transaction() as session:
                newest = session.scalar(select(func.max(BlocklistGenerationRow.generation)))
        except Unavailable as exc:
            raise Unavailable(f"the public-figure blocklist cannot be read: {exc.message}") from exc
        return int(newest or 0)

    def _load(self, cipher: TemplateCipher) -> Blocklist:
        row = self._newest_row()
        if row is None:
            return self._import_legacy(cipher)
        generation = row.generation
        if row.index_blob is None or row.figures_json is None:
            raise Unavailable(f"blocklist generation {generation} has no stored index")
        try:
            index = cipher.decrypt(row.index_blob)
        except Unavailable as exc:
            raise Unavailable(
                f"the public-figure blocklist (generation {generation}) cannot be decrypted with "
                f"{cipher.source}: it was saved with another template key (every host needs the "
                "same GUARD_TEMPLATE_KEY: put that key back) or it is damaged (rebuild it with "
                "`guard blocklist build`)"
            ) from exc
        encoded = Encoded(index, row.figures_json.encode())
        if (encoded.index_sha256, encoded.figures_sha256) != (
            row.index_sha256,
            row.figures_sha256,
        ):
            raise Unavailable(
                f"the public-figure blocklist (generation {generation}) fails its checksum; "
                "rebuild it with `guard blocklist build`"
            )
        return decode(
            encoded,
            format_version=row.format,
            engine=row.engine,
            dimension=row.dimension,
            generation=generation,
        )

    def _newest_row(self) -> BlocklistGenerationRow | None:
        # One statement: the newest row as a whole, so a save in between cannot pair one
        # generation's number with another's (or a pruned) blob.
        newest = select(BlocklistGenerationRow).order_by(BlocklistGenerationRow.generation.desc())
        try:
            with self.db.transaction() as session:
                return session.scalars(newest.limit(1)).first()
        except Unavailable as exc:
            raise Unavailable(f"the public-figure blocklist cannot be read: {exc.message}") from exc

    # the one-time import of an earlier version's files ---------------------------------------

    def legacy_pending(self) -> bool:
        """Whether a legacy blocklist folder waits to be imported (the database holds none)."""
        if self.legacy_dir is None or not (self.legacy_dir / LEGACY_MANIFEST).is_file():
            return False
        return not self.exists()

    def _import_legacy(self, cipher: TemplateCipher) -> Blocklist:
        directory = self.legacy_dir
        if directory is None or not (directory / LEGACY_MANIFEST).is_file():
            raise Unavailable(
                f"the database {self.db.safe_url} holds no public-figure blocklist; run "
                "`guard init` (it creates an empty one) or `guard blocklist build`"
            )
        blocklist = read_legacy_folder(directory)
        actor = f"import:{directory}"
        try:  # no lock of this process: the primary key decides (and current() holds _lock)
            encoded = self._insert(blocklist, blocklist.generation, actor, cipher)
        except Conflict:
            # Another process imported it (or saved) first: read what it saved.
            return self._load(cipher)
        self._told(saved_change({}, blocklist, actor))
        return decode(
            encoded,
            format_version=FORMAT_VERSION,
            engine=blocklist.engine_name,
            dimension=blocklist.dimension,
            generation=blocklist.generation,
        )

    # writing ---------------------------------------------------------------------------------

    def prepare(self, empty: Callable[[], Blocklist]) -> BlocklistPrepared:
        """``guard init``: save ``empty()`` as generation 1 unless the database holds a
        generation, or a legacy folder waits to be imported (its import is audited by the
        guard that first reads it, so it is left to that guard)."""
        if self.exists():
            return BlocklistPrepared.EXISTS
        if self.legacy_pending():
            return BlocklistPrepared.IMPORT_PENDING
        self.replace(empty(), actor="init")
        return BlocklistPrepared.CREATED

    def update(
        self,
        change: Callable[[Blocklist], T],
        *,
        actor: str = "library",
        expected: int | None = None,
    ) -> T:
        """Apply ``change`` to a fresh copy of the newest generation and save the result as the
        next one; returns what ``change`` returned. :class:`Conflict`, with nothing saved, when
        the newest generation is not ``expected`` (when given) or another writer saved the
        next generation first."""
        with self._writes:
            blocklist = self.load()
            _check_expected(blocklist.generation, expected)
            before = dict(blocklist.figures)  # figures are immutable: a shallow copy is a snapshot
            result = change(blocklist)
            self._save(blocklist, blocklist.generation, actor)
        self._told(saved_change(before, blocklist, actor))
        return result

    def replace(
        self, blocklist: Blocklist, *, actor: str = "library", expected: int | None = None
    ) -> int:
        """Save a whole new blocklist (a rebuild) as the next generation; returns it. Refused
        like :meth:`update`. The generation it replaces need not be readable: a rebuild is how
        a damaged blocklist is repaired."""
        if self.legacy_pending():
            # Import first, so the generation numbers go on from the files' and the import is
            # audited; unreadable files are what this rebuild replaces.
            with suppress(Unavailable):
                self.load()
        with self._writes:
            base, before = self._newest_figures()
            _check_expected(base, expected)
            self._save(blocklist, base, actor)
        self._told(saved_change(before, blocklist, actor))
        return blocklist.generation

    def _newest_figures(self) -> tuple[int, dict[str, PublicFigure]]:
        """The newest generation and its figures, read from the sidecar alone ({} when it
        cannot be parsed: what a rebuild replaces need not decrypt or verify)."""
        row = self._newest_row()
        if row is None:
            return 0, {}
        try:
            figures = parse_figures(row.figures_json.encode()) if row.figures_json else ({}, 0)
        except (ValueError, KeyError, TypeError):
            return row.generation, {}
        return row.generation, figures[0]

    def _save(self, blocklist: Blocklist, base: int, actor: str) -> None:
        cipher = self._cipher()
        encoded = self._insert(blocklist, base + 1, actor, cipher)
        replica = decode(
            encoded,
            format_version=FORMAT_VERSION,
            engine=blocklist.engine_name,
            dimension=blocklist.dimension,
            generation=blocklist.generation,
        )
        with self._lock:  # this host enforces its own change at once, not a poll later
            if self._replica is None or self._replica.generation < replica.generation:
                self._replica, self._replica_cipher = replica, cipher
                self._polled_at = time.monotonic()

    def _insert(
        self, blocklist: Blocklist, generation: int, actor: str, cipher: TemplateCipher
    ) -> Encoded:
        """Insert ``blocklist`` as ``generation`` and prune old blobs, in one transaction;
        :class:`Conflict` when that generation exists (another writer saved it first)."""
        encoded = encode(blocklist)
        row = BlocklistGenerationRow(
            generation=generation,
            format=FORMAT_VERSION,
            engine=blocklist.engine_name,
            dimension=blocklist.dimension,
            figure_count=len(blocklist.figures),
            vector_count=len(blocklist.index),
            index_blob=cipher.encrypt(encoded.index),
            index_sha256=encoded.index_sha256,
            figures_json=encoded.figures.decode(),
            figures_sha256=encoded.figures_sha256,
            actor=actor,
            written_at=datetime.now(UTC),
        )
        try:
            with self.db.transaction() as session:
                session.add(row)
                session.flush()  # the primary key decides here, before anything is pruned
                session.execute(
                    update(BlocklistGenerationRow)
                    .where(BlocklistGenerationRow.generation <= generation - KEEP_BLOBS)
                    .where(BlocklistGenerationRow.index_blob.is_not(None))
                    .values(index_blob=None, figures_json=None)
                )
        except IntegrityError as exc:
            raise Conflict(
                f"another change saved blocklist generation {generation} first (this change "
                f"was based on generation {generation - 1}); nothing was saved: read the "
                "blocklist again and reapply the change"
            ) from exc
        blocklist.generation = generation
        return encoded

    def _told(self, saved: BlocklistSaved) -> None:
        if self._on_saved is not None:
            self._on_saved(saved)


def _check_expected(newest: int, expected: int | None) -> None:
    if expected is not None and expected != newest:
        raise Conflict(
            f"the blocklist is at generation {newest}, this change was based on {expected}; "
            "nothing was saved: read it again and reapply"
        )
