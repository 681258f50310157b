"""The Alembic environment and versions, the only schema path: ``migrations/`` in the source tree,
``guard.migrations`` once installed (pyproject.toml maps it); ``guard.db.MIGRATIONS_DIR`` is this
folder and ``guard.db.upgrade_to_head`` runs it. Nothing here is imported as a module."""
