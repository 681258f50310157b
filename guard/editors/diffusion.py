"""``DiffusersEditor``: prompt-driven edits with a diffusers pipeline loaded from a local folder.

    >>> settings = Settings(editor="diffusers", diffusers_model_dir=Path("/models/kontext"))
    >>> editor = DiffusersEditor(settings)                      # doctest: +SKIP
    >>> editor.name, sorted(editor.operations)                  # doctest: +SKIP
    ('diffusers/FluxKontextPipeline', ['prompt_edit'])

The pipeline class comes from the folder's ``model_index.json``: ``QwenImageEditPipeline``,
``FluxKontextPipeline`` or ``StableDiffusionInstructPix2PixPipeline``; anything else is a clear
error. Nothing is ever downloaded (``local_files_only``). The model works at
``GUARD_DIFFUSERS_RESOLUTION`` (long side) and the output is resized back to the input's size;
with face protection on (the default) every allowed face's region is then put back exactly as
it was, so an edit of the background or clothes cannot change who the person is.

A run is reproducible from what :meth:`DiffusersEditor.describe` records (seed, steps,
guidance, the prompt's SHA-256, the pipeline class and the SHA-256 of its weights), which goes
into the result and the C2PA manifest. Install with the ``diffusers`` extra (torch is pinned to
the CPU build this project is tested with).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from guard.config import Settings
from guard.devices import torch_device
from guard.editors import ProgressCallback
from guard.editors.face_protection import keep_faces
from guard.editors.model_identity import ModelIdentity, identify_model, read_model_index
from guard.editors.params import Flag, Number, ParamSpec, check_params, shown
from guard.errors import (
    ConfigurationError,
    EditTimedOut,
    InvalidInput,
    Unavailable,
    UnprocessableInput,
)
from guard.faces import Face
from guard.media import RGBImage

PROMPT_EDIT = "prompt_edit"


@dataclass(frozen=True)
class _PipelineKind:
    """How one pipeline class is called."""

    guidance_argument: str
    default_guidance: float
    # Sizes the model accepts are multiples of this.
    multiple: int
    takes_size: bool


PIPELINES: dict[str, _PipelineKind] = {
    "QwenImageEditPipeline": _PipelineKind("true_cfg_scale", 4.0, 16, True),
    "FluxKontextPipeline": _PipelineKind("guidance_scale", 2.5, 16, True),
    "StableDiffusionInstructPix2PixPipeline": _PipelineKind("guidance_scale", 7.5, 8, False),
}

# What a prompt edit takes; anything else is refused before anything is decided.
SPECS: dict[str, ParamSpec] = {
    "seed": Number(0, 2**63, high_open=True, integer=True),
    "steps": Number(1, 500, integer=True),
    "guidance": Number(0.0, 50.0),
    "protect_faces": Flag(),
}


def working_size(height: int, width: int, long_side: int, multiple: int) -> tuple[int, int]:
    """``(height, width)`` scaled so the long side is about ``long_side``, each a multiple of
    ``multiple`` (at least one multiple)."""
    scale = long_side / max(height, width)
    return (
        max(multiple, round(height * scale / multiple) * multiple),
        max(multiple, round(width * scale / multiple) * multiple),
    )


@dataclass(frozen=True)
class RunSettings:
    """One run's knobs, from the request's params over the settings' defaults."""

    seed: int
    steps: int
    guidance: float
    protect_faces: bool

    @classmethod
    def from_params(
        cls, params: Mapping[str, str | float | int | bool], settings: Settings, kind: _PipelineKind
    ) -> RunSettings:
        """The run ``params`` ask for, or :class:`UnprocessableInput` (``invalid_params``)
        naming the parameter that is unknown or does not fit."""
        given = check_params(PROMPT_EDIT, params, SPECS)
        default_guidance = (
            settings.diffusers_guidance
            if settings.diffusers_guidance is not None
            else kind.default_guidance
        )
        return cls(
            seed=int(given.get("seed", 0)),
            steps=int(given.get("steps", settings.diffusers_steps)),
            guidance=float(given.get("guidance", default_guidance)),
            protect_faces=bool(given.get("protect_faces", settings.diffusers_protect_faces)),
        )


class DiffusersEditor:
    """A diffusers image-editing pipeline behind the :class:`~guard.editors.Editor` protocol.

    Thread-safe: runs are serialised (one pipeline, one device)."""

    operations = frozenset({PROMPT_EDIT})

    def __init__(self, settings: Settings) -> None:
        if settings.diffusers_model_dir is None:
            raise ConfigurationError(
                "GUARD_EDITOR=diffusers needs GUARD_DIFFUSERS_MODEL_DIR: a pipeline folder "
                "saved with save_pretrained (models are never downloaded)"
            )
        self.settings = settings
        self.model_dir = settings.diffusers_model_dir
        index, _ = read_model_index(self.model_dir)
        class_name = str(index["_class_name"])
        if class_name not in PIPELINES:
            raise ConfigurationError(
                f"{self.model_dir}/model_index.json names {class_name}; the diffusers editor "
                f"supports {', '.join(sorted(PIPELINES))}"
            )
        self.pipeline_class = class_name
        self._kind = PIPELINES[class_name]
        self.model: ModelIdentity = identify_model(
            self.model_dir, cache=settings.data_dir / "cache" / "model-weights.json"
        )
        self.device = torch_device(settings.device)
        self._pipeline: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"diffusers/{self.pipeline_class}"

    @property
    def version(self) -> str:
        import diffusers

        return f"{diffusers.__version__}+weights.{self.model.weights_sha256[:16]}"

    # loading -------------------------------------------------------------------------------

    def _dtype(self) -> Any:
        import torch

        wanted = self.settings.diffusers_dtype
        if wanted == "auto":
            return torch.bfloat16 if self.device == "cuda" else torch.float32
        return getattr(torch, wanted)

    def pipeline(self) -> Any:
        """The loaded pipeline (loaded on first use; :class:`Unavailable` if it cannot be)."""
        if self._pipeline is None:
            import diffusers

            pipeline_type = getattr(diffusers, self.pipeline_class)
            try:
                pipe = pipeline_type.from_pretrained(
                    self.model_dir, local_files_only=True, dtype=self._dtype()
                )
            except Exception as exc:  # corrupt weights, missing components, missing packages
                raise Unavailable(
                    f"the {self.pipeline_class} in {self.model_dir} (GUARD_DIFFUSERS_MODEL_DIR) "
                    f"cannot be loaded: {type(exc).__name__}: {exc}"
                ) from exc
            if self.settings.diffusers_cpu_offload and self.device == "cuda":
                pipe.enable_model_cpu_offload()
            else:
                pipe.to(self.device)
            if self.settings.diffusers_attention_slicing:
                pipe.enable_attention_slicing()
            pipe.set_progress_bar_config(disable=True)
            self._pipeline = pipe
        return self._pipeline

    # editing -------------------------------------------------------------------------------

    def validate_params(
        self, operation: str, params: Mapping[str, str | float | int | bool], prompt: str = ""
    ) -> RunSettings:
        """The run this request asks for; refuses (before anything is decided) an operation
        other than ``prompt_edit`` (400), an empty prompt (422 ``prompt_required``) and
        parameters it cannot run with (422 ``invalid_params``)."""
        if operation != PROMPT_EDIT:
            raise InvalidInput(
                f"the diffusers editor has no operation {shown(operation)}; choose {PROMPT_EDIT}"
            )
        if not prompt.strip():
            raise UnprocessableInput(
                f"'{PROMPT_EDIT}' needs a prompt saying what to change", code="prompt_required"
            )
        return RunSettings.from_params(params, self.settings, self._kind)

    def describe(
        self, operation: str, params: Mapping[str, str | float | int | bool], prompt: str
    ) -> dict[str, str | int | float | bool]:
        """What makes this run reproducible, for the result and the C2PA manifest. Checks the
        request first (:meth:`validate_params`): ``Guard.edit`` calls this before deciding."""
        run = self.validate_params(operation, params, prompt)
        return {
            "pipeline_class": self.pipeline_class,
            "model_index_sha256": self.model.model_index_sha256,
            "weights_sha256": self.model.weights_sha256,
            "seed": run.seed,
            "steps": run.steps,
            "guidance": run.guidance,
            "prompt_sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
            "protect_faces": run.protect_faces,
            "resolution": self.settings.diffusers_resolution,
        }

    def edit(
        self,
        rgb: RGBImage,
        faces: Sequence[Face],
        operation: str,
        params: Mapping[str, str | float | int | bool],
        *,
        prompt: str = "",
        progress: ProgressCallback | None = None,
    ) -> RGBImage:
        run = self.validate_params(operation, params, prompt)
        with self._lock:
            made = self._run(rgb, prompt, run, progress)
        height, width = rgb.shape[:2]
        if made.shape[:2] != (height, width):
            made = np.asarray(
                cv2.resize(made, (width, height), interpolation=cv2.INTER_LANCZOS4), np.uint8
            )
        return keep_faces(rgb, made, faces) if run.protect_faces else made

    def _run(
        self, rgb: RGBImage, prompt: str, run: RunSettings, progress: ProgressCallback | None
    ) -> RGBImage:
        import torch
        from PIL import Image

        pipe = self.pipeline()
        kind = self._kind
        height, width = working_size(
            rgb.shape[0], rgb.shape[1], self.settings.diffusers_resolution, kind.multiple
        )
        image = Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS)
        deadline = time.monotonic() + self.settings.diffusers_timeout_s

        def on_step_end(
            _pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]
        ) -> dict[str, Any]:
            if progress is not None:
                progress(step + 1, run.steps)
            if time.monotonic() > deadline:
                raise EditTimedOut(
                    f"the {self.pipeline_class} edit ran past GUARD_DIFFUSERS_TIMEOUT_S="
                    f"{self.settings.diffusers_timeout_s:g} s after step {step + 1} of "
                    f"{run.steps} and was stopped; nothing was produced"
                )
            return tensors

        arguments: dict[str, Any] = {
            "prompt": prompt,
            "image": image,
            "num_inference_steps": run.steps,
            kind.guidance_argument: run.guidance,
            "generator": torch.Generator(device="cpu").manual_seed(run.seed),
            "callback_on_step_end": on_step_end,
            "output_type": "np",
        }
        if kind.takes_size:
            arguments.update(height=height, width=width)
        if self.pipeline_class == "FluxKontextPipeline":
            arguments.update(max_area=height * width, _auto_resize=False)
        if self.pipeline_class == "QwenImageEditPipeline" and run.guidance > 1.0:
            arguments["negative_prompt"] = " "  # true CFG needs a negative prompt
        with torch.inference_mode():
            frames = pipe(**arguments).images
        made = np.asarray(frames[0], dtype=np.float32)
        return np.ascontiguousarray(np.clip(np.rint(made * 255.0), 0, 255).astype(np.uint8))
