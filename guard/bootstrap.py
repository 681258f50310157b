"""``guard init``: make a data directory ready (schema, development keys, empty blocklist)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guard.audit import (
    AUDIT_KEY_NAME,
    PRIVATE_KEY_FILE,
    checkpoint_key_file,
    create_checkpoint_key,
)
from guard.config import Settings
from guard.db import current_revision, upgrade_to_head
from guard.faces import FaceEngine
from guard.identity import Blocklist, BlocklistStore
from guard.provenance import DevSigningFiles, create_dev_signing_identity
from guard.secrets import Keyring, create_dev_keys


@dataclass(frozen=True)
class InitReport:
    database: str
    schema_revision: str | None
    keys_created: tuple[Path, ...]
    blocklist_created: bool
    blocklist_dir: Path
    signing: DevSigningFiles | None = None


def create_keys(settings: Settings) -> tuple[list[Path], DevSigningFiles | None]:
    """Missing development keys: template and HMAC keys, the audit log's Ed25519 checkpoint key
    and a local C2PA signing identity, each only where the settings do not name production ones."""
    keys_created: list[Path] = []
    if settings.template_key is None or settings.hmac_key is None:
        keys_created = create_dev_keys(settings.keys_dir)
    if create_checkpoint_key(settings.audit_keys_dir, AUDIT_KEY_NAME):
        keys_created.append(settings.audit_keys_dir / PRIVATE_KEY_FILE)
    signing = None
    if settings.c2pa_cert_chain is None and settings.c2pa_private_key is None:
        signing = create_dev_signing_identity(settings.c2pa_keys_dir)
    return keys_created, signing


def refuse_bad_keys(settings: Settings) -> None:
    """Start-up check (``guard serve``, the app's lifespan): raise
    :class:`~guard.errors.KeyMaterialError`, naming the file or setting, when the HMAC,
    template or audit checkpoint key is set or present but empty, too short or unparsable. A
    key that is missing altogether passes here: ``/readyz`` reports it and every request that
    needs it fails closed until it exists."""
    Keyring(settings).validate_if_present()
    checkpoint_key_file(settings.audit_keys_dir / PRIVATE_KEY_FILE).validate_if_present()


def initialise(settings: Settings, engine: FaceEngine) -> InitReport:
    """Idempotent: upgrades the schema to head, creates missing dev keys (see
    :func:`create_keys`) and an empty blocklist for ``engine`` if none exists."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    keys_created, signing = create_keys(settings)
    store = BlocklistStore(settings.blocklist_path)
    created = not store.exists()
    if created:
        store.replace(Blocklist.empty(engine.name, engine.dimension))
    from guard.db import create_db_engine

    safe_url = create_db_engine(settings.database_url).url.render_as_string(hide_password=True)
    return InitReport(
        database=safe_url,
        schema_revision=current_revision(settings.database_url),
        keys_created=tuple(keys_created),
        blocklist_created=created,
        blocklist_dir=settings.blocklist_path,
        signing=signing,
    )
