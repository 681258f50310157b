"""The public-figure blocklist: face embeddings of people whose likeness must not be faked.

On disk (``GUARD_BLOCKLIST_DIR``, default ``<data_dir>/blocklist``)::

    manifest.json            names the current generation's files and their SHA-256
    index-<generation>.faiss every figure's vectors and ids (an IndexIDMap2(IndexFlatIP)) and,
                             past EXACT_LIMIT vectors, the trained IVF index (format 2; format 1,
                             the bare IndexIDMap2, still loads and is rewritten as 2 on save)
    figures-<generation>.json  figure metadata: name, aliases, which vector ids are theirs

A save writes the new generation's files first and replaces ``manifest.json`` last (atomic
rename), so a reader sees either the old or the new blocklist, never a mix. Every load verifies
both checksums; a missing or corrupt blocklist raises :class:`~guard.errors.Unavailable`, which
makes every check deny with reason ``unavailable``.

Every change goes through :meth:`BlocklistStore.update` (writers take turns, across processes
too, so no change is lost) or :meth:`BlocklistStore.replace` (a rebuild).

    >>> store = BlocklistStore(Path("var/blocklist"))               # doctest: +SKIP
    >>> store.update(lambda b: b.add_figure("tom-hanks", "Tom Hanks", [vector]))  # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from guard.errors import Conflict, InvalidInput, NotFound, Unavailable
from guard.faces import l2_normalise
from guard.identity.vector_index import EXACT_LIMIT, VectorIndex, best_per_owner

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # 1: the index file was a bare IndexIDMap2(IndexFlatIP)
MANIFEST = "manifest.json"
WRITE_LOCK = ".write.lock"
T = TypeVar("T")
FIGURE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
SEARCH_DEPTH = 16


@dataclass(frozen=True)
class PublicFigure:
    id: str
    name: str
    aliases: tuple[str, ...]
    vector_ids: tuple[int, ...]


@dataclass(frozen=True)
class FigureCandidate:
    figure_id: str
    similarity: float


@dataclass
class Blocklist:
    """Figures and their vectors. Mutate, then hand to :meth:`BlocklistStore.save`."""

    engine_name: str
    dimension: int
    index: VectorIndex
    figures: dict[str, PublicFigure] = field(default_factory=dict)
    next_vector_id: int = 1
    generation: int = 0
    _owner: dict[int, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._owner = {vid: f.id for f in self.figures.values() for vid in f.vector_ids}

    @classmethod
    def empty(cls, engine_name: str, dimension: int) -> Blocklist:
        return cls(
            engine_name=engine_name,
            dimension=dimension,
            index=VectorIndex(dimension, approximate_above=EXACT_LIMIT),
        )

    def __len__(self) -> int:
        return len(self.figures)

    def add_figure(
        self,
        figure_id: str,
        name: str,
        embeddings: Sequence[np.ndarray],
        *,
        aliases: Iterable[str] = (),
    ) -> PublicFigure:
        """Add a figure, or more reference embeddings (and aliases) to an existing one."""
        if not FIGURE_ID.match(figure_id):
            raise InvalidInput(
                f"figure id {figure_id!r} must be lowercase letters, digits, '.', '_' or '-'"
            )
        if not embeddings:
            raise InvalidInput(f"figure {figure_id} needs at least one face embedding")
        vectors = np.stack([l2_normalise(e) for e in embeddings])
        if vectors.shape[1] != self.dimension:
            raise InvalidInput(
                f"embedding dimension {vectors.shape[1]} does not match the blocklist's "
                f"{self.dimension} ({self.engine_name} engine)"
            )
        ids = np.arange(self.next_vector_id, self.next_vector_id + len(vectors), dtype=np.int64)
        self.index.add(ids, vectors)
        self.next_vector_id += len(vectors)
        previous = self.figures.get(figure_id)
        known_aliases = previous.aliases if previous else ()
        figure = PublicFigure(
            id=figure_id,
            name=name,
            aliases=tuple(
                dict.fromkeys([*known_aliases, *(a.strip() for a in aliases if a.strip())])
            ),
            vector_ids=(previous.vector_ids if previous else ()) + tuple(int(i) for i in ids),
        )
        self.figures[figure_id] = figure
        self._owner.update(dict.fromkeys((int(i) for i in ids), figure_id))
        return figure

    def remove_figure(self, figure_id: str) -> PublicFigure:
        figure = self.figures.pop(self.figure(figure_id).id)
        self.index.remove(np.array(figure.vector_ids, dtype=np.int64))
        for vector_id in figure.vector_ids:
            self._owner.pop(vector_id, None)
        return figure

    def figure(self, figure_id: str) -> PublicFigure:
        try:
            return self.figures[figure_id]
        except KeyError:
            raise NotFound(f"no public figure {figure_id!r} on the blocklist") from None

    def list_figures(self) -> list[PublicFigure]:
        return sorted(self.figures.values(), key=lambda f: f.id)

    def match(self, embeddings: Iterable[np.ndarray]) -> list[list[FigureCandidate]]:
        """For each embedding, the most similar figures, best first. Similarities are exact;
        past ``EXACT_LIMIT`` vectors which vectors are looked at is not (IVF: see
        :mod:`guard.identity.vector_index` for the measured recall)."""
        queries = [np.asarray(e, dtype=np.float32) for e in embeddings]
        if not queries:
            return []
        return [
            [FigureCandidate(f, s) for f, s in best_per_owner(hits, self._owner)]
            for hits in self.index.search(np.stack(queries), SEARCH_DEPTH)
        ]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@dataclass(frozen=True)
class BlocklistSaved:
    """One saved change of the blocklist, for the audit log (ids only, never embeddings)."""

    generation: int
    actor: str
    """Who changed it: ``key:<id>`` (an operator API key), ``cli:<user>`` or ``library``."""
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    """Figures kept whose name, aliases or reference photos changed."""


def _saved(old: dict[str, PublicFigure], after: Blocklist, actor: str) -> BlocklistSaved:
    new = after.figures
    return BlocklistSaved(
        generation=after.generation,
        actor=actor,
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        changed=tuple(sorted(i for i in new.keys() & old.keys() if new[i] != old[i])),
    )


class BlocklistStore:
    """Loads, verifies and atomically saves the blocklist; caches the loaded copy per process
    and reloads it when another process saves a new generation. ``on_saved`` is told every
    saved change (the guard appends it to the audit log)."""

    def __init__(
        self, directory: Path, *, on_saved: Callable[[BlocklistSaved], None] | None = None
    ) -> None:
        self.directory = directory
        self._on_saved = on_saved
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._cached: Blocklist | None = None
        self._cached_stamp: tuple[tuple[str, int, int, int], ...] | None = None

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def current(self) -> Blocklist:
        """The blocklist as it is on disk now. The verified copy is cached until any of its
        files changes (size, mtime or inode), so a corrupted or replaced file is noticed on
        the next call and re-verified."""
        with self._lock:
            stamp = self._stamp()
            if self._cached is None or stamp != self._cached_stamp:
                self._cached = None
                self._cached = self.load()
                self._cached_stamp = stamp
            return self._cached

    def _stamp(self) -> tuple[tuple[str, int, int, int], ...]:
        if not self.manifest_path.is_file():
            self._cached = None
            raise Unavailable(
                f"the public-figure blocklist is missing ({self.manifest_path}); "
                "run `guard init` or `guard blocklist build`"
            )
        stamps = []
        for path in sorted(self.directory.iterdir()):
            if path.name == MANIFEST or path.name.startswith(("index-", "figures-")):
                try:
                    stat = path.stat()
                except OSError:
                    continue  # removed while listing: the next stamp differs anyway
                stamps.append((path.name, stat.st_mtime_ns, stat.st_size, stat.st_ino))
        return tuple(stamps)

    def load(self) -> Blocklist:
        """Read and verify the current generation, or raise :class:`Unavailable`."""
        try:
            manifest = json.loads(self.manifest_path.read_bytes())
            index_bytes = (self.directory / manifest["index_file"]).read_bytes()
            figures_bytes = (self.directory / manifest["figures_file"]).read_bytes()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Unavailable(
                f"the public-figure blocklist at {self.directory} cannot be read: {exc}"
            ) from exc
        if manifest.get("format") not in READABLE_FORMATS:
            raise Unavailable(
                f"blocklist format {manifest.get('format')!r} is not supported; "
                "rebuild it with `guard blocklist build`"
            )
        if _sha256(index_bytes) != manifest.get("index_sha256") or _sha256(
            figures_bytes
        ) != manifest.get("figures_sha256"):
            raise Unavailable(
                f"the public-figure blocklist at {self.directory} fails its checksum; "
                "restore it from backup or rebuild it with `guard blocklist build`"
            )
        try:
            sidecar = json.loads(figures_bytes)
            dimension = int(manifest["dimension"])
            index = VectorIndex.from_bytes(index_bytes, dimension, approximate_above=EXACT_LIMIT)
            figures = {
                f["id"]: PublicFigure(
                    id=f["id"],
                    name=f["name"],
                    aliases=tuple(f["aliases"]),
                    vector_ids=tuple(int(v) for v in f["vector_ids"]),
                )
                for f in sidecar["figures"]
            }
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise Unavailable(f"the public-figure blocklist is corrupt: {exc}") from exc
        return Blocklist(
            engine_name=str(manifest["engine"]),
            dimension=dimension,
            index=index,
            figures=figures,
            next_vector_id=int(sidecar["next_vector_id"]),
            generation=int(manifest["generation"]),
        )

    def update(self, change: Callable[[Blocklist], T], *, actor: str = "library") -> T:
        """Apply ``change`` to a fresh copy of the current generation and save the result as
        the next one; returns what ``change`` returned. Writers take turns (a lock file in the
        blocklist folder, so processes too), each starting from what the last one saved: no
        change is lost. A generation that moved on under the lock (a writer that does not take
        it, a copied folder) is a :class:`Conflict`, and nothing is written."""
        with self._writing():
            blocklist = self.load()
            before = dict(blocklist.figures)  # figures are immutable: a shallow copy is a snapshot
            result = change(blocklist)
            self._write(blocklist, expected=blocklist.generation)
            self._told(_saved(before, blocklist, actor))
            return result

    def replace(self, blocklist: Blocklist, *, actor: str = "library") -> int:
        """Save a whole new blocklist (a rebuild) as the next generation; returns it."""
        with self._writing():
            before = self._figures_on_disk()
            generation = self._write(blocklist, expected=self._disk_generation())
            self._told(_saved(before, blocklist, actor))
            return generation

    def _figures_on_disk(self) -> dict[str, PublicFigure]:
        """What a rebuild replaces ({} when missing or unreadable: a rebuild is the repair)."""
        try:
            return dict(self.load().figures) if self.exists() else {}
        except Unavailable:
            return {}

    def _told(self, saved: BlocklistSaved) -> None:
        if self._on_saved is not None:
            self._on_saved(saved)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._write_lock, (self.directory / WRITE_LOCK).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, blocklist: Blocklist, *, expected: int) -> int:
        """Write generation ``expected + 1`` and switch the manifest to it atomically."""
        on_disk = self._disk_generation()
        if on_disk != expected:
            raise Conflict(
                f"the blocklist changed while this change was made (generation {expected} "
                f"became {on_disk}); nothing was saved: apply the change again"
            )
        generation = expected + 1
        index_bytes = blocklist.index.to_bytes()
        sidecar: dict[str, Any] = {
            "next_vector_id": blocklist.next_vector_id,
            "figures": [
                {
                    "id": f.id,
                    "name": f.name,
                    "aliases": list(f.aliases),
                    "vector_ids": list(f.vector_ids),
                }
                for f in blocklist.list_figures()
            ],
        }
        figures_bytes = json.dumps(sidecar, sort_keys=True, indent=1).encode()
        index_file, figures_file = f"index-{generation}.faiss", f"figures-{generation}.json"
        _write_atomic(self.directory / index_file, index_bytes)
        _write_atomic(self.directory / figures_file, figures_bytes)
        manifest = {
            "format": FORMAT_VERSION,
            "generation": generation,
            "engine": blocklist.engine_name,
            "dimension": blocklist.dimension,
            "figure_count": len(blocklist.figures),
            "vector_count": len(blocklist.index),
            "index_file": index_file,
            "index_sha256": _sha256(index_bytes),
            "figures_file": figures_file,
            "figures_sha256": _sha256(figures_bytes),
            "written_at": datetime.now(UTC).isoformat(),
        }
        _write_atomic(self.manifest_path, json.dumps(manifest, indent=1).encode())
        blocklist.generation = generation
        self._remove_old_generations(keep={index_file, figures_file})
        return generation

    def _disk_generation(self) -> int:
        try:
            return int(json.loads(self.manifest_path.read_bytes())["generation"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def _remove_old_generations(self, keep: set[str]) -> None:
        for path in self.directory.glob("*-*.*"):
            if path.name not in keep and path.name.startswith(("index-", "figures-")):
                path.unlink(missing_ok=True)
