"""``guard init``: make a data directory ready (schema, development keys) and the database's
blocklist (an empty first generation when it holds none)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guard.audit import (
    AUDIT_KEY_NAME,
    PRIVATE_KEY_FILE,
    audit_key_file,
    create_checkpoint_key,
)
from guard.config import Settings
from guard.db import Database, current_revision, upgrade_to_head
from guard.faces import FaceEngine
from guard.identity import Blocklist, BlocklistPrepared, BlocklistStore
from guard.provenance import DevSigningFiles, SigningKeys, create_dev_signing_identity
from guard.secrets import Keyring, create_dev_keys


@dataclass(frozen=True)
class InitReport:
    database: str
    schema_revision: str | None
    keys_created: tuple[Path, ...]
    blocklist_created: bool
    blocklist_import_pending: bool
    """An earlier version's blocklist files wait in ``legacy_blocklist_dir``: the first guard
    that reads the blocklist imports them into the database (and audits it)."""
    legacy_blocklist_dir: Path
    signing: DevSigningFiles | None = None


def create_keys(settings: Settings) -> tuple[list[Path], DevSigningFiles | None]:
    """Missing development keys: template and HMAC keys, the audit log's Ed25519 checkpoint key
    and a local C2PA signing identity, each only where the settings do not name production ones
    (none at all with ``GUARD_KEY_PROVIDER``: every key then comes from a setting or from it)."""
    keys_created: list[Path] = []
    if settings.key_provider:
        return keys_created, None
    if settings.template_key is None or settings.hmac_key is None:
        keys_created = create_dev_keys(settings.keys_dir)
    if settings.audit_signing_key is None and create_checkpoint_key(
        settings.audit_keys_dir, AUDIT_KEY_NAME
    ):
        keys_created.append(settings.audit_keys_dir / PRIVATE_KEY_FILE)
    signing = None
    named = (
        settings.c2pa_cert_chain,
        settings.c2pa_private_key,
        settings.c2pa_cert_chain_pem,
        settings.c2pa_private_key_pem,
    )
    if all(value is None for value in named):
        signing = create_dev_signing_identity(settings.c2pa_keys_dir)
    return keys_created, signing


def refuse_bad_keys(settings: Settings) -> None:
    """Start-up check (``guard serve``, the app's lifespan): raise
    :class:`~guard.errors.KeyMaterialError`, naming the file or setting, when the HMAC,
    template, audit checkpoint or C2PA key (or chain) is set or present but empty, too short
    or unparsable; :class:`~guard.errors.ConfigurationError` when ``GUARD_KEY_PROVIDER`` does
    not import. A key that is missing altogether (or that the provider cannot give now) passes
    here: ``/readyz`` reports it and every request that needs it fails closed until it exists."""
    Keyring(settings).validate_if_present()
    audit_key_file(settings).validate_if_present()
    SigningKeys(settings).validate_if_present()


def initialise(settings: Settings, engine: FaceEngine) -> InitReport:
    """Idempotent: upgrades the schema to head, creates missing dev keys (see
    :func:`create_keys`) and, when the database holds no blocklist and no earlier version's
    blocklist files wait to be imported, an empty one for ``engine`` (encrypted with the
    template key, so after the keys)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    keys_created, signing = create_keys(settings)
    db = Database(settings.database_url)
    try:
        store = BlocklistStore(db, Keyring(settings).cipher, legacy_dir=settings.blocklist_path)
        prepared = store.prepare(lambda: Blocklist.empty(engine.name, engine.dimension))
    finally:
        db.dispose()
    return InitReport(
        database=db.safe_url,
        schema_revision=current_revision(settings.database_url),
        keys_created=tuple(keys_created),
        blocklist_created=prepared is BlocklistPrepared.CREATED,
        blocklist_import_pending=prepared is BlocklistPrepared.IMPORT_PENDING,
        legacy_blocklist_dir=settings.blocklist_path,
        signing=signing,
    )
