"""The shipped policies (``default``, ``newsroom``, ``strict``): data only. ``policies/`` in the
source tree, ``guard.policies`` once installed (pyproject.toml maps it); ``GUARD_POLICY=<name>``
picks one and ``guard.config.POLICIES_DIR`` is its folder."""
