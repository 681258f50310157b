"""Is this the key the registry's templates were stored with? Decrypt one stored template.

A Fernet token is authenticated, so a wrong key fails on any template: one row (the newest, by
primary key) answers for all, whatever their number. With no templates stored there is nothing
a key could be wrong about, and any valid key passes. ``/readyz`` asks this on every probe and
the guard asks it before it builds a registry around a key it has not used yet, so a wrong key
is never a steady state that reads "ready" (see docs/service.md).
"""

from __future__ import annotations

from sqlalchemy import select

from guard.db import Database
from guard.identity.models import FaceTemplateRow
from guard.secrets import TemplateCipher


def check_template_key(db: Database, cipher: TemplateCipher) -> None:
    """:class:`~guard.errors.Unavailable` naming the key when ``cipher`` cannot decrypt the
    newest stored template (it is not the key the templates were stored with)."""
    with db.transaction() as session:
        stored = session.scalars(
            select(FaceTemplateRow.embedding_ciphertext)
            .order_by(FaceTemplateRow.id.desc())
            .limit(1)
        ).first()
    if stored is not None:
        cipher.decrypt(stored)
