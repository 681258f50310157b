"""Editors: what actually changes the picture, behind one protocol.

``classic`` (CPU, OpenCV) is the embedded default so everything runs anywhere; the diffusers
backend (``GUARD_EDITOR=diffusers``, :mod:`guard.editors.diffusion`) comes with the
``diffusers`` extra.

    >>> editor = ClassicEditor()
    >>> sorted(editor.operations)
    ['background_blur', 'color_grade', 'relight', 'sketch']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from guard.config import Settings
from guard.editors.classic import ClassicEditor
from guard.errors import ConfigurationError
from guard.faces import Face
from guard.media import RGBImage

EditParams = Mapping[str, str | float | int | bool]
# Told (steps done, steps in all) as an edit runs.
ProgressCallback = Callable[[int, int], None]


class Editor(Protocol):
    """Makes one edit. Must keep every face in ``faces`` the same person (the output scan
    checks it and denies drift)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def operations(self) -> frozenset[str]: ...

    def edit(
        self,
        rgb: RGBImage,
        faces: Sequence[Face],
        operation: str,
        params: EditParams,
        *,
        prompt: str = "",
        progress: ProgressCallback | None = None,
    ) -> RGBImage: ...

    def describe(
        self, operation: str, params: EditParams, prompt: str
    ) -> dict[str, str | int | float | bool]:
        """What the output's provenance must record to reproduce this edit (model, seed, ...);
        empty for an editor whose name, version and parameters say it all.

        ``Guard.edit`` calls this before anything is decided, so it is also where an editor
        refuses a request it could not run: :class:`~guard.errors.UnprocessableInput` with code
        ``invalid_params`` naming the parameter (unknown, wrong type, not finite, out of range)
        and what it takes. An edit the input gate allowed must not fail on its parameters
        afterwards: the allow would be audited and the caller refused. The built-in editors
        do it in ``validate_params`` (specs in :mod:`guard.editors.params`)."""
        ...


def create_editor(settings: Settings) -> Editor:
    """The editor ``GUARD_EDITOR`` names."""
    if settings.editor == "classic":
        return ClassicEditor()
    try:
        from guard.editors.diffusion import DiffusersEditor
    except ImportError as exc:
        raise ConfigurationError(
            f"GUARD_EDITOR=diffusers needs the diffusers extra "
            f"(pip install 'likeness-guard[diffusers]'): {exc}"
        ) from exc
    return DiffusersEditor(settings)


__all__ = ["ClassicEditor", "EditParams", "Editor", "ProgressCallback", "create_editor"]
