"""Which model made an image: a pipeline directory identified by its class, its
``model_index.json`` and one SHA-256 over all its weight files.

Hashing multi-GB weights takes minutes, so each file's digest is cached by path, size and
modification time (a JSON file the guard owns); a changed file is hashed again.

    >>> cache = Path("var/cache/model-weights.json")
    >>> identity = identify_model(Path("/models/kontext"), cache=cache)   # doctest: +SKIP
    >>> identity.pipeline_class, identity.weights_sha256[:12]            # doctest: +SKIP
    ('FluxKontextPipeline', '3f0c9a1b2d4e')
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.errors import ConfigurationError

WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx"})
_CHUNK = 8 * 1024 * 1024
_cache_lock = threading.Lock()
log = logging.getLogger("guard.editors")


@dataclass(frozen=True)
class ModelIdentity:
    pipeline_class: str
    model_dir: str
    model_index_sha256: str
    weights_sha256: str
    weight_files: int
    weight_bytes: int


def read_model_index(model_dir: Path) -> tuple[dict[str, Any], bytes]:
    """The parsed ``model_index.json`` of a pipeline directory and its bytes; a clear
    :class:`ConfigurationError` naming ``GUARD_DIFFUSERS_MODEL_DIR`` otherwise."""
    if not model_dir.is_dir():
        raise ConfigurationError(
            f"GUARD_DIFFUSERS_MODEL_DIR={model_dir} is not a directory; point it at a pipeline "
            "saved with save_pretrained (models are never downloaded)"
        )
    index = model_dir / "model_index.json"
    try:
        raw = index.read_bytes()
        parsed = json.loads(raw)
    except OSError as exc:
        raise ConfigurationError(
            f"{index} cannot be read (GUARD_DIFFUSERS_MODEL_DIR): {exc.strerror or exc}"
        ) from exc
    except ValueError as exc:
        raise ConfigurationError(f"{index} is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("_class_name"), str):
        raise ConfigurationError(f"{index} names no pipeline class (_class_name)")
    return parsed, raw


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _load_cache(cache: Path | None) -> dict[str, Any]:
    if cache is None:
        return {}
    try:
        loaded = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _save_cache(cache: Path, entries: dict[str, Any]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(entries, sort_keys=True), encoding="utf-8")
    os.replace(temporary, cache)


def identify_model(model_dir: Path, *, cache: Path | None = None) -> ModelIdentity:
    """Identify the pipeline in ``model_dir`` (hashing only the weight files that changed since
    ``cache`` last saw them)."""
    index, raw = read_model_index(model_dir)
    files = sorted(
        p for p in model_dir.rglob("*") if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES
    )
    if not files:
        raise ConfigurationError(f"{model_dir} holds no weight files ({sorted(WEIGHT_SUFFIXES)})")
    with _cache_lock:
        entries = _load_cache(cache)
        changed = False
        lines = []
        total = 0
        for path in files:
            stat = path.stat()
            key = str(path.resolve())
            stamp = [stat.st_size, stat.st_mtime_ns]
            known = entries.get(key)
            if not (isinstance(known, dict) and known.get("stamp") == stamp):
                log.info("hashing %s (%.1f MB; once, then cached)", path, stat.st_size / 1e6)
                known = {"stamp": stamp, "sha256": _file_digest(path)}
                entries[key] = known
                changed = True
            total += stat.st_size
            lines.append(f"{path.relative_to(model_dir).as_posix()}\0{known['sha256']}\n")
        if changed and cache is not None:
            _save_cache(cache, entries)
    return ModelIdentity(
        pipeline_class=str(index["_class_name"]),
        model_dir=str(model_dir),
        model_index_sha256=hashlib.sha256(raw).hexdigest(),
        weights_sha256=hashlib.sha256("".join(lines).encode()).hexdigest(),
        weight_files=len(files),
        weight_bytes=total,
    )
