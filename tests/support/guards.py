"""The type of the ``make_guard`` fixture (tests/conftest.py), for test signatures."""

from __future__ import annotations

from collections.abc import Callable

from guard import Guard

GuardFactory = Callable[..., Guard]
"""``make_guard(**settings)``: an initialised guard on the test's database and data folder."""
