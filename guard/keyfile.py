"""A key read from a setting, a key provider or a file, validated when read, re-read when the
file changes or the provider's answer expires.

    >>> hmac_key = KeyFile(KeySource("hmac key", path, "GUARD_HMAC_KEY"), parse)  # doctest: +SKIP
    >>> hasher = hmac_key.current()     # a stat call per use; read and parsed after a change

A key from a setting is parsed once. A key from a file is re-read whenever ``os.stat`` of the
file changes (inode, size, mtime or ctime, in nanoseconds), so a key an operator writes is used
from the next request on, without a restart: best written to a temporary file and renamed over
the old one, which changes the inode whatever the clock's resolution. A file that is missing,
unreadable or whose content the parser refuses raises :class:`~guard.errors.KeyMaterialError`
naming the file (or the setting) and what is wrong, on every use until it is fixed; a changed
file never falls back to the key it replaced. Messages carry lengths and kinds, never key bytes.

A key with no setting but a provider (``GUARD_KEY_PROVIDER``, :mod:`guard.key_provider`) is asked
of the provider on first use and again once its answer is ``ttl_s`` old; bytes that changed are
parsed again, like a changed file. A failed ask makes the key unusable (never the previous value)
until an ask succeeds; the next ask waits ``retry_after_failure_s``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import SecretStr

from guard.errors import KeyMaterialError
from guard.key_provider import KeyProvider

T = TypeVar("T")


class KeyProblem(Exception):
    """Raised by a key parser: what is wrong with the bytes, e.g. ``is 0 bytes; it needs ...``
    (the subject, the file or setting, is prefixed by :class:`KeyFile`)."""


@dataclass(frozen=True)
class KeySource:
    """Where a key comes from: the setting when ``configured`` is given, else ``provider``
    (asked for ``provider_name``) when given, else ``path``; what an operator should do about a
    missing file (``missing_fix``), a bad one (``fix``) or a bad setting (``setting_fix``)."""

    label: str  # "hmac key"
    path: Path
    setting: str | None = None  # "GUARD_HMAC_KEY"
    configured: SecretStr | None = None
    missing_fix: str = "run `guard secrets init`"
    fix: str = ""
    setting_fix: str = ""
    provider: KeyProvider | None = None
    provider_name: str = ""  # guard.key_provider.KEY_NAMES

    @property
    def where(self) -> str:
        if self.configured is not None and self.setting is not None:
            return self.setting
        if self.configured is None and self.provider is not None:
            return self.provider.describe(self.provider_name)
        return f"the {self.label} {self.path}"


Parser = Callable[[bytes, str], T]
"""``parse(data, where)``: the key object, or :class:`KeyProblem`; ``where`` names the source
(for messages the key object gives later, e.g. a template that does not decrypt)."""

_Stamp = tuple[int, int, int, int, int]


def _stamp(result: os.stat_result) -> _Stamp:
    return (result.st_dev, result.st_ino, result.st_size, result.st_mtime_ns, result.st_ctime_ns)


class KeyFile(Generic[T]):
    """One key of a guard (see the module docstring). Thread-safe."""

    def __init__(self, source: KeySource, parse: Parser[T]) -> None:
        self.source = source
        self._parse = parse
        self._lock = threading.Lock()
        self._stamp: _Stamp | None = None
        self._digest: bytes | None = None
        self._value: T | None = None
        self._problem: str | None = None
        self._ask_after: float | None = None  # provider keys: monotonic time of the next ask
        self._unreachable = False  # provider keys: the last ask failed (not a bad key)
        if source.configured is not None:
            self._load(source.configured.get_secret_value().encode())

    @property
    def from_setting(self) -> bool:
        return self.source.configured is not None

    @property
    def from_provider(self) -> bool:
        return not self.from_setting and self.source.provider is not None

    def current(self) -> T:
        """The key as its source holds it now; :class:`KeyMaterialError` if it is unusable."""
        if self.from_provider:
            self._ask()
        elif not self.from_setting:
            self._refresh()
        with self._lock:
            if self._problem is not None:
                raise KeyMaterialError(self._problem)
            assert self._value is not None
            return self._value

    def validate_if_present(self) -> None:
        """Raise if the key is set, or its file exists, and is unusable; a missing file passes
        (it is reported as not ready, and everything that needs it fails closed); so does a
        provider that cannot be asked now, while one that answers with a bad key raises."""
        if self.from_provider:
            try:
                self.current()
            except KeyMaterialError:
                if not self._unreachable:
                    raise
        elif self.from_setting or os.path.lexists(self.source.path):
            self.current()

    def _ask(self) -> None:
        provider, name = self.source.provider, self.source.provider_name
        assert provider is not None
        with self._lock:  # one ask at a time: concurrent uses wait for it, not ask again
            now = time.monotonic()
            if self._ask_after is not None and now < self._ask_after:
                return  # the last answer (or failure) is still fresh
            try:
                data = provider.fetch(name)
            except KeyMaterialError as exc:
                self._digest, self._value, self._problem = None, None, exc.message
                self._unreachable = True
                self._ask_after = now + provider.retry_after_failure_s
                return
            self._unreachable = False
            self._ask_after = now + provider.ttl_s
            if hashlib.sha256(data).digest() == self._digest and self._problem is None:
                return  # the same key again: keep the parsed one
            self._load(data)
            if self._problem is not None:  # a bad key is asked again as soon as a failure is
                self._ask_after = now + provider.retry_after_failure_s

    def _refresh(self) -> None:
        path = self.source.path
        try:
            stamp = _stamp(os.stat(path))
        except OSError as exc:
            with self._lock:
                self._stamp = self._digest = self._value = None
                self._problem = self._unreadable(exc)
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                data = path.read_bytes()
            except OSError as exc:
                self._stamp, self._digest, self._value = None, None, None
                self._problem = self._unreadable(exc)
                return
            self._stamp = stamp
            if hashlib.sha256(data).digest() == self._digest and self._problem is None:
                return  # touched or rewritten with the same key: keep the parsed one
            self._load(data)

    def _load(self, data: bytes) -> None:
        source = self.source
        try:
            self._value, self._problem = self._parse(data, source.where), None
        except KeyProblem as exc:
            if self.from_provider:
                fix = "the provider must return what the key's file would hold"
            else:
                fix = source.setting_fix if self.from_setting else source.fix
            problem = f"{source.where} {exc}" + (f" ({fix})" if fix else "")
            self._value, self._problem = None, problem
        self._digest = hashlib.sha256(data).digest()

    def _unreadable(self, exc: OSError) -> str:
        source = self.source
        unset = f" and {source.setting} is not set" if source.setting else ""
        problem = f"cannot be read ({exc.strerror}){unset}"
        return f"the {source.label} {source.path} {problem}: {source.missing_fix}"
