"""Editors: what actually changes the picture, behind one protocol.

``classic`` (CPU, OpenCV) is the embedded default so everything runs anywhere; diffusion
backends come as an optional extra.

    >>> editor = ClassicEditor()
    >>> sorted(editor.operations)
    ['background_blur', 'color_grade', 'relight']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from guard.editors.classic import ClassicEditor
from guard.faces import Face
from guard.media import RGBImage

EditParams = Mapping[str, str | float | int | bool]


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
        self, rgb: RGBImage, faces: Sequence[Face], operation: str, params: EditParams
    ) -> RGBImage: ...


__all__ = ["ClassicEditor", "EditParams", "Editor"]
