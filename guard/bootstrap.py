"""``guard init``: make a data directory ready (schema, development keys, empty blocklist)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guard.config import Settings
from guard.db import current_revision, upgrade_to_head
from guard.faces import FaceEngine
from guard.identity import Blocklist, BlocklistStore
from guard.keys import create_dev_keys


@dataclass(frozen=True)
class InitReport:
    database: str
    schema_revision: str | None
    keys_created: tuple[Path, ...]
    blocklist_created: bool
    blocklist_dir: Path


def initialise(settings: Settings, engine: FaceEngine) -> InitReport:
    """Idempotent: upgrades the schema to head, creates missing dev keys (only when the keys are
    not given by settings) and an empty blocklist for ``engine`` if none exists."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    keys_created: list[Path] = []
    if settings.template_key is None or settings.hmac_key is None:
        keys_created = create_dev_keys(settings.keys_dir)
    store = BlocklistStore(settings.blocklist_path)
    created = not store.exists()
    if created:
        store.save(Blocklist.empty(engine.name, engine.dimension))
    from guard.db import create_db_engine

    safe_url = create_db_engine(settings.database_url).url.render_as_string(hide_password=True)
    return InitReport(
        database=safe_url,
        schema_revision=current_revision(settings.database_url),
        keys_created=tuple(keys_created),
        blocklist_created=created,
        blocklist_dir=settings.blocklist_path,
    )
