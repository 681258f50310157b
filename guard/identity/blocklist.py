"""The public-figure blocklist: face embeddings of people whose likeness must not be faked.

A :class:`Blocklist` is the figures (ids, names, aliases) and their vectors in a
:class:`~guard.identity.vector_index.VectorIndex`. It is kept in the database, one row per
saved generation, by :class:`~guard.identity.blocklist_store.BlocklistStore`; this module holds
the data and how one generation is turned into bytes and back:

- the index: every figure's vectors and ids (an ``IndexIDMap2(IndexFlatIP)``) and, past
  ``EXACT_LIMIT`` vectors, the trained IVF index (format 2; format 1, the bare
  ``IndexIDMap2``, still loads and is written as 2 on the next save). The store encrypts these
  bytes with the template key: they are embeddings.
- the sidecar (JSON): which vector ids are whose, names, aliases. Not biometric.

Both carry a SHA-256 that every load verifies: a damaged generation raises
:class:`~guard.errors.Unavailable`, which makes every check deny with reason ``unavailable``.
:func:`read_legacy_folder` reads the files earlier versions kept in ``<data_dir>/blocklist``
(``manifest.json``, ``index-<generation>.faiss``, ``figures-<generation>.json``), once, for the
import into the database.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guard.errors import InvalidInput, NotFound, Unavailable
from guard.faces import l2_normalise
from guard.identity.vector_index import EXACT_LIMIT, VectorIndex, best_per_owner

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # 1: the index was a bare IndexIDMap2(IndexFlatIP)
LEGACY_MANIFEST = "manifest.json"
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
    """Figures and their vectors. Mutate, then hand to :meth:`BlocklistStore.replace`."""

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


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Encoded:
    """One generation as bytes (plaintext: the store encrypts ``index``)."""

    index: bytes
    figures: bytes

    @property
    def index_sha256(self) -> str:
        return sha256_hex(self.index)

    @property
    def figures_sha256(self) -> str:
        return sha256_hex(self.figures)


def encode(blocklist: Blocklist) -> Encoded:
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
    return Encoded(
        blocklist.index.to_bytes(), json.dumps(sidecar, sort_keys=True, indent=1).encode()
    )


def parse_figures(figures: bytes) -> tuple[dict[str, PublicFigure], int]:
    """The sidecar's figures and next vector id (``ValueError``, ``KeyError`` or ``TypeError``
    when it is not one)."""
    sidecar = json.loads(figures)
    parsed = {
        f["id"]: PublicFigure(
            id=f["id"],
            name=f["name"],
            aliases=tuple(f["aliases"]),
            vector_ids=tuple(int(v) for v in f["vector_ids"]),
        )
        for f in sidecar["figures"]
    }
    return parsed, int(sidecar["next_vector_id"])


def decode(
    encoded: Encoded, *, format_version: int, engine: str, dimension: int, generation: int
) -> Blocklist:
    """The blocklist of verified bytes, or :class:`Unavailable` naming what is wrong."""
    if format_version not in READABLE_FORMATS:
        raise Unavailable(
            f"blocklist generation {generation} has format {format_version!r}, which this guard "
            "does not read; rebuild it with `guard blocklist build`"
        )
    try:
        index = VectorIndex.from_bytes(encoded.index, dimension, approximate_above=EXACT_LIMIT)
        figures, next_vector_id = parse_figures(encoded.figures)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise Unavailable(
            f"the public-figure blocklist (generation {generation}) is corrupt: {exc}; "
            "rebuild it with `guard blocklist build`"
        ) from exc
    return Blocklist(
        engine_name=engine,
        dimension=dimension,
        index=index,
        figures=figures,
        next_vector_id=next_vector_id,
        generation=generation,
    )


def read_legacy_folder(directory: Path) -> Blocklist:
    """The blocklist an earlier version saved as files in ``directory``, checksums verified
    as they were then (:class:`Unavailable` when missing, unreadable or damaged). Its
    ``generation`` is the folder's (at least 1)."""
    try:
        manifest = json.loads((directory / LEGACY_MANIFEST).read_bytes())
        encoded = Encoded(
            (directory / manifest["index_file"]).read_bytes(),
            (directory / manifest["figures_file"]).read_bytes(),
        )
        generation = max(1, int(manifest.get("generation") or 1))
        engine, dimension = str(manifest["engine"]), int(manifest["dimension"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Unavailable(
            f"the blocklist files in {directory} cannot be imported: {exc}; fix or remove the "
            "folder, or build a new blocklist with `guard blocklist build`"
        ) from exc
    if (encoded.index_sha256, encoded.figures_sha256) != (
        manifest.get("index_sha256"),
        manifest.get("figures_sha256"),
    ):
        raise Unavailable(
            f"the blocklist files in {directory} fail their checksum and were not imported; "
            "restore them from backup or build a new blocklist with `guard blocklist build`"
        )
    return decode(
        encoded,
        format_version=manifest.get("format"),
        engine=engine,
        dimension=dimension,
        generation=generation,
    )


@dataclass(frozen=True)
class BlocklistSaved:
    """One saved change of the blocklist, for the audit log (ids only, never embeddings)."""

    generation: int
    actor: str
    """Who changed it: ``key:<id>`` (an operator API key), ``cli:<user>``, ``library``,
    ``init`` (`guard init`'s empty blocklist) or ``import:<folder>`` (the one-time import of an
    earlier version's blocklist files)."""
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    """Figures kept whose name, aliases or reference photos changed."""


def saved_change(old: dict[str, PublicFigure], after: Blocklist, actor: str) -> BlocklistSaved:
    """What changed from ``old`` to ``after`` (saved as ``after.generation``), by whom."""
    new = after.figures
    return BlocklistSaved(
        generation=after.generation,
        actor=actor,
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        changed=tuple(sorted(i for i in new.keys() & old.keys() if new[i] != old[i])),
    )
