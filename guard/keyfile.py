"""A key read from a setting or a file, validated when read, re-read when the file changes.

    >>> hmac_key = KeyFile(KeySource("hmac key", path, "GUARD_HMAC_KEY"), parse)  # doctest: +SKIP
    >>> hasher = hmac_key.current()     # a stat call per use; read and parsed after a change

A key from a setting is parsed once. A key from a file is re-read whenever ``os.stat`` of the
file changes (inode, size, mtime or ctime, in nanoseconds), so a key an operator writes is used
from the next request on, without a restart: best written to a temporary file and renamed over
the old one, which changes the inode whatever the clock's resolution. A file that is missing,
unreadable or whose content the parser refuses raises :class:`~guard.errors.KeyMaterialError`
naming the file (or the setting) and what is wrong, on every use until it is fixed; a changed
file never falls back to the key it replaced. Messages carry lengths and kinds, never key bytes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import SecretStr

from guard.errors import KeyMaterialError

T = TypeVar("T")


class KeyProblem(Exception):
    """Raised by a key parser: what is wrong with the bytes, e.g. ``is 0 bytes; it needs ...``
    (the subject, the file or setting, is prefixed by :class:`KeyFile`)."""


@dataclass(frozen=True)
class KeySource:
    """Where a key comes from: the setting when ``configured`` is given, else ``path``; what an
    operator should do about a missing file (``missing_fix``), a bad one (``fix``) or a bad
    setting (``setting_fix``)."""

    label: str  # "hmac key"
    path: Path
    setting: str | None = None  # "GUARD_HMAC_KEY"
    configured: SecretStr | None = None
    missing_fix: str = "run `guard secrets init`"
    fix: str = ""
    setting_fix: str = ""

    @property
    def where(self) -> str:
        if self.configured is not None and self.setting is not None:
            return self.setting
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
        if source.configured is not None:
            self._load(source.configured.get_secret_value().encode())

    @property
    def from_setting(self) -> bool:
        return self.source.configured is not None

    def current(self) -> T:
        """The key as its source holds it now; :class:`KeyMaterialError` if it is unusable."""
        if not self.from_setting:
            self._refresh()
        with self._lock:
            if self._problem is not None:
                raise KeyMaterialError(self._problem)
            assert self._value is not None
            return self._value

    def validate_if_present(self) -> None:
        """Raise if the key is set, or its file exists, and is unusable; a missing file passes
        (it is reported as not ready, and everything that needs it fails closed)."""
        if self.from_setting or os.path.lexists(self.source.path):
            self.current()

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
            fix = source.setting_fix if self.from_setting else source.fix
            problem = f"{source.where} {exc}" + (f" ({fix})" if fix else "")
            self._value, self._problem = None, problem
        self._digest = hashlib.sha256(data).digest()

    def _unreadable(self, exc: OSError) -> str:
        source = self.source
        unset = f" and {source.setting} is not set" if source.setting else ""
        problem = f"cannot be read ({exc.strerror}){unset}"
        return f"the {source.label} {source.path} {problem}: {source.missing_fix}"
