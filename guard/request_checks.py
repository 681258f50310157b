"""An edit or a stamp request checked before anything is decided.

Whatever could fail after the input decision was audited is refused here first: an allow in the
log that nothing came of, and a caller refused without the decision id, is what this prevents.
``Guard.edit`` and ``Guard.stamp`` call these before decoding or gating (an edit's parameters
are checked first by its editor, :meth:`~guard.editors.Editor.describe`, whose refusals name
the range each takes; :func:`check_param_values` is what any editor's must be).

    >>> check_name("acme-diffusion", "generator", max_chars=200)
    >>> check_name("acme\\ndiffusion", "generator", max_chars=200)   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    guard.errors.UnprocessableInput: the generator holds U+000A, ...
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import get_args

from guard.editors import Editor
from guard.editors.params import shown
from guard.errors import InvalidInput, UnprocessableInput
from guard.media import OutputFormat
from guard.requests import EditRequest, StampRequest, check_request_text

OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
MAX_PARAMS = 32
MAX_PARAM_NAME_CHARS = 64
MAX_PARAM_TEXT_CHARS = 1_000
GENERATOR_CHARS = 200
GENERATOR_VERSION_CHARS = 100
# Characters a name shown in manifests, reports and consoles may not hold: controls (a newline
# forges a line of a report), format characters (bidi overrides reorder what people read),
# surrogates and line or paragraph separators.
_NOT_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_name(value: object, what: str, *, max_chars: int) -> None:
    """A name the guard signs into a manifest (a generator, its version): 1 to ``max_chars``
    characters of text on one line, not only spaces; else 422 ``invalid_text``."""
    if not isinstance(value, str):
        raise UnprocessableInput(
            f"the {what} must be text, not {type(value).__name__}", code="invalid_text"
        )
    if not _encodable(value):
        raise UnprocessableInput(
            f"the {what} holds a lone surrogate, which is not text", code="invalid_text"
        )
    if not value.strip() or len(value) > max_chars:
        raise UnprocessableInput(
            f"the {what} must be 1 to {max_chars} characters, not only spaces "
            f"(it is {len(value):,})",
            code="invalid_text",
        )
    for char in value:
        if unicodedata.category(char) in _NOT_IN_NAMES:
            raise UnprocessableInput(
                f"the {what} holds U+{ord(char):04X}, a control or format character; "
                "a name is one line of visible text",
                code="invalid_text",
            )


def check_output_format(value: object) -> None:
    """One of the formats the guard writes; else 422 ``invalid_params``."""
    if value not in OUTPUT_FORMATS:
        raise UnprocessableInput(
            f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, not {shown(value)}",
            code="invalid_params",
        )


def check_param_values(params: object) -> None:
    """What every editor's parameters must be, whatever the editor: an object of at most
    :data:`MAX_PARAMS` names, each a short name, each value text, a bool or a finite number.
    The editor checks its own names and ranges after this (422 ``invalid_params`` both)."""
    if not isinstance(params, Mapping):
        raise UnprocessableInput(
            f"params must be an object of names and values, not {type(params).__name__}",
            code="invalid_params",
        )
    if len(params) > MAX_PARAMS:
        raise UnprocessableInput(
            f"params has {len(params):,} entries; an edit takes at most {MAX_PARAMS}",
            code="invalid_params",
        )
    for name, value in params.items():
        if not (
            isinstance(name, str)
            and 0 < len(name) <= MAX_PARAM_NAME_CHARS
            and _encodable(name)
            and name.isprintable()
        ):
            raise UnprocessableInput(
                f"the parameter name {shown(name)} is not a name: 1 to "
                f"{MAX_PARAM_NAME_CHARS} printable characters",
                code="invalid_params",
            )
        if isinstance(value, str):
            if len(value) > MAX_PARAM_TEXT_CHARS or not _encodable(value):
                raise UnprocessableInput(
                    f"parameter '{name}' must be text of at most {MAX_PARAM_TEXT_CHARS:,} "
                    "characters without lone surrogates",
                    code="invalid_params",
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise UnprocessableInput(
                    f"parameter '{name}' must be a finite number, not {shown(value)}",
                    code="invalid_params",
                )
        elif not isinstance(value, int):  # bool is an int
            raise UnprocessableInput(
                f"parameter '{name}' must be text, a number or true/false, "
                f"not {type(value).__name__}",
                code="invalid_params",
            )


def check_edit(request: EditRequest, editor: Editor) -> Mapping[str, str | int | float | bool]:
    """Everything about an edit that could fail after its input decision is audited: its text,
    an operation ``editor`` has, the parameters the editor can run with (it refuses the others,
    naming what each takes), what any editor's parameters must be, the output format. Returns
    the editor's record of the edit."""
    check_request_text(
        requester=request.requester, operation=request.operation, prompt=request.prompt
    )
    if request.operation not in editor.operations:
        raise InvalidInput(
            f"editor '{editor.name}' has no operation '{request.operation}'; "
            f"choose one of {sorted(editor.operations)}"
        )
    record = editor.describe(request.operation, request.params, request.prompt)
    check_output_format(request.output_format)
    check_param_values(request.params)
    return record


def check_stamp_request(request: StampRequest) -> None:
    """What a stamp request must be before its image is scanned: the generator and its
    version are signed into the manifest as its software agent."""
    check_name(request.generator, "generator", max_chars=GENERATOR_CHARS)
    check_name(request.generator_version, "generator_version", max_chars=GENERATOR_VERSION_CHARS)
    if request.output_format is not None:
        check_output_format(request.output_format)
