"""Building a blocklist from reference photos (``<folder>/<figure-id>/*.jpg``) or from an
embeddings file, and picking the face a reference photo is of."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from guard.errors import Conflict, InvalidInput
from guard.faces import Face, FaceEngine
from guard.identity.blocklist import Blocklist
from guard.media import PHOTO_SUFFIXES, decode_image


def reference_face(faces: Sequence[Face], photo: str) -> Face:
    """The face a reference ``photo`` is of: the most confident detection (not the largest: a
    weak false detection found in a turned view can have the larger box). A photo without a
    face is :class:`InvalidInput`."""
    if not faces:
        raise InvalidInput(f"{photo} shows no face")
    return max(faces, key=lambda face: face.score)


@dataclass(frozen=True)
class BuildProblem:
    """A photo or figure the build skipped or resolved, and why."""

    figure_id: str
    photo: str
    message: str


def _figure_metadata(folder: Path) -> tuple[str, list[str]]:
    meta_path = folder / "figure.json"
    if not meta_path.is_file():
        return folder.name.replace("-", " ").replace("_", " ").title(), []
    try:
        meta = json.loads(meta_path.read_text())
        return str(meta.get("name") or folder.name), [str(a) for a in meta.get("aliases", [])]
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{meta_path} is not valid JSON: {exc}") from exc


def build_from_folder(
    root: Path,
    engine: FaceEngine,
    *,
    on_photo: Callable[[str, Path], None] | None = None,
) -> tuple[Blocklist, list[BuildProblem]]:
    """Build a blocklist from ``<root>/<figure-id>/*.jpg`` (plus an optional ``figure.json``
    with ``name`` and ``aliases``). Each photo contributes its most confident face; photos without a
    face are reported, not fatal. ``on_photo`` is called once per photo (progress)."""
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder of <figure-id>/<photo> files")
    blocklist = Blocklist.empty(engine.name, engine.dimension)
    problems: list[BuildProblem] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name, aliases = _figure_metadata(folder)
        embeddings = []
        for photo in sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
            if on_photo is not None:
                on_photo(folder.name, photo)
            try:
                faces = engine.detect_and_embed(decode_image(photo.read_bytes()).rgb)
            except InvalidInput as exc:
                problems.append(BuildProblem(folder.name, photo.name, exc.message))
                continue
            if not faces:
                problems.append(BuildProblem(folder.name, photo.name, "no face found; skipped"))
                continue
            if len(faces) > 1:
                problems.append(
                    BuildProblem(
                        folder.name, photo.name, f"{len(faces)} faces; used the most confident"
                    )
                )
            embeddings.append(reference_face(faces, photo.name).embedding)
        if not embeddings:
            problems.append(BuildProblem(folder.name, "", "no usable photo; figure not added"))
            continue
        blocklist.add_figure(folder.name, name, embeddings, aliases=aliases)
    return blocklist, problems


def build_from_embeddings(path: Path, *, engine_name: str) -> Blocklist:
    """Build from an ``.npz`` with ``figure_ids`` (n,), ``embeddings`` (n, d), optional ``names``
    (n,) and ``engine`` (which must match the running engine: vectors of two engines do not mix)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            figure_ids = [str(x) for x in data["figure_ids"]]
            embeddings = np.asarray(data["embeddings"], dtype=np.float32)
            names = [str(x) for x in data["names"]] if "names" in data else figure_ids
            file_engine = str(data["engine"]) if "engine" in data else engine_name
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidInput(f"{path} is not a blocklist embeddings file: {exc}") from exc
    if file_engine != engine_name:
        raise Conflict(
            f"{path} holds {file_engine} embeddings; the running engine is {engine_name}"
        )
    if embeddings.ndim != 2 or len(embeddings) != len(figure_ids) or len(names) != len(figure_ids):
        raise InvalidInput(f"{path}: figure_ids, names and embeddings must have the same length")
    blocklist = Blocklist.empty(engine_name, int(embeddings.shape[1]))
    grouped: dict[str, list[np.ndarray]] = {}
    for figure_id, vector in zip(figure_ids, embeddings, strict=True):
        grouped.setdefault(figure_id, []).append(vector)
    first_name = dict(zip(figure_ids, names, strict=True))
    for figure_id, vectors in grouped.items():
        blocklist.add_figure(figure_id, first_name[figure_id], vectors)
    return blocklist
