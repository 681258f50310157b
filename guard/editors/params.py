"""What an editor's parameters may be, declared once per operation and checked before anything
is decided: ``Guard.edit`` asks the editor (:meth:`~guard.editors.Editor.describe`) before the
input gate runs, so a malformed edit is refused (422 ``invalid_params``) with nothing audited,
never allowed and audited first and refused afterwards.

    >>> specs = {"strength": Number(0.0, 0.1, low_open=True)}
    >>> check_params("background_blur", {"strength": 0.03}, specs)
    {'strength': 0.03}
    >>> check_params("background_blur", {"strength": 5}, specs)    # doctest: +ELLIPSIS
    Traceback (most recent call last):
    guard.errors.UnprocessableInput: background_blur: strength must be a number in (0, 0.1], not 5

Values come from JSON (HTTP), from ``KEY=VALUE`` strings (the CLI) or from Python callers, so a
number may arrive as ``"0.5"`` and a flag as ``"true"``; each spec accepts those spellings and
nothing looser: a bool is not a number, NaN, infinities and overflowing values are not numbers
at all, and an integer parameter takes no fraction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from guard.errors import UnprocessableInput

ParamValue = str | float | int | bool


class _Refused(ValueError):
    """A value a spec does not accept; the message says what it takes."""


def shown(value: object, limit: int = 40) -> str:
    """A caller's value as a message may quote it: ``repr`` escapes lone surrogates and control
    characters (a message must itself be text), cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number_text(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else f"{value:.0f}"


@dataclass(frozen=True)
class Number:
    """A finite number in ``[low, high]`` (an end excluded where ``low_open``/``high_open``);
    ``integer`` takes whole numbers only (``4.0`` is 4, ``4.5`` is refused)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        low, high = _number_text(self.low), _number_text(self.high)
        return f"{kind} in {left}{low}, {high}{right}"

    def read(self, value: object) -> float | int:
        if isinstance(value, bool):  # a bool is an int to Python, never a number to a caller
            raise _Refused(self.describe())
        if isinstance(value, str):
            try:
                value = float(value.strip()) if len(value) <= 64 else math.nan
            except ValueError:
                raise _Refused(self.describe()) from None
        if isinstance(value, int):
            number: float | int = value
        elif isinstance(value, float):
            number = value
        else:
            raise _Refused(self.describe())
        if isinstance(number, float) and not math.isfinite(number):
            raise _Refused(self.describe())
        if self.integer:
            if isinstance(number, float):
                if not number.is_integer():
                    raise _Refused(self.describe())
                number = int(number)
        elif isinstance(number, int):
            if abs(number) > 2**53:  # beyond what a float holds exactly: no real setting
                raise _Refused(self.describe())
            number = float(number)
        below = number <= self.low if self.low_open else number < self.low
        above = number >= self.high if self.high_open else number > self.high
        if below or above:
            raise _Refused(self.describe())
        return number


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of names."""

    options: tuple[str, ...]

    def describe(self) -> str:
        return f"one of {', '.join(self.options)}"

    def read(self, value: object) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise _Refused(self.describe())
        return value


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class Flag:
    """True or false: a bool, 0 or 1, or ``true``/``false``/``yes``/``no``/``1``/``0``."""

    def describe(self) -> str:
        return "true or false"

    def read(self, value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
            return value.strip().lower() in _TRUE
        raise _Refused(self.describe())


ParamSpec = Number | Choice | Flag


def check_params(
    operation: str, params: Mapping[str, object], specs: Mapping[str, ParamSpec]
) -> dict[str, ParamValue]:
    """The parameters of ``operation`` read by their ``specs`` (only those given; the editor
    fills in its defaults), or :class:`UnprocessableInput` (``invalid_params``) naming the first
    parameter that is unknown or does not fit and what it takes."""
    if not isinstance(params, Mapping):
        raise UnprocessableInput(
            f"the parameters of '{operation}' must be an object of names and values, "
            f"not {type(params).__name__}",
            code="invalid_params",
        )
    unknown = [key for key in params if key not in specs]
    if unknown:
        listed = ", ".join(shown(key) for key in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise UnprocessableInput(
            f"unknown parameter(s) {listed}{more} for '{operation}'; known: "
            f"{', '.join(sorted(specs)) or 'none'}",
            code="invalid_params",
        )
    read: dict[str, ParamValue] = {}
    for name, value in params.items():
        try:
            read[name] = specs[name].read(value)
        except _Refused as refused:
            raise UnprocessableInput(
                f"{operation}: {name} must be {refused}, not {shown(value)}",
                code="invalid_params",
            ) from None
    return read
