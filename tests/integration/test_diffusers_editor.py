"""The diffusers editor with tiny, randomly initialised pipelines of each supported class,
saved to disk and run through ``Guard.edit`` on a real photo (tests/support/tiny_pipelines.py).
Nothing is downloaded (HF_HUB_OFFLINE=1, conftest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

pytest.importorskip("diffusers", reason="the diffusers extra is not installed (make test has it)")

from guard import EditRequest, Guard
from guard.config import Settings
from guard.editors import create_editor
from guard.editors.diffusion import DiffusersEditor, working_size
from guard.editors.face_protection import protected_box
from guard.editors.model_identity import identify_model
from guard.errors import ConfigurationError, EditTimedOut, InvalidInput, Unavailable
from guard.provenance import read_manifest
from guard.provenance.store import ManifestRow
from guard.samples import sample_rgb
from tests.support.guards import GuardFactory
from tests.support.photos import PORTRAIT, crop
from tests.support.registry import REQUESTER, enroll_model
from tests.support.tiny_pipelines import has_torchvision, save_tiny_pipeline

CLASSES = [
    "StableDiffusionInstructPix2PixPipeline",
    "FluxKontextPipeline",
    pytest.param(
        "QwenImageEditPipeline",
        marks=pytest.mark.skipif(
            not has_torchvision(),
            reason="SKIPPED LOUDLY: transformers' Qwen2VLProcessor cannot be built without "
            "torchvision, which has no CPU build for this machine; the editor supports the "
            "class, this test runs where torchvision is installed",
        ),
    ),
]
FAST = {"diffusers_resolution": 96, "diffusers_steps": 2}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-pipelines")
    return {
        name: save_tiny_pipeline(name, root / name)
        for name in ("StableDiffusionInstructPix2PixPipeline", "FluxKontextPipeline")
    }


def _model_dir(tiny_models: dict[str, Path], class_name: str, tmp_path: Path) -> Path:
    if class_name not in tiny_models:
        tiny_models[class_name] = save_tiny_pipeline(class_name, tmp_path / class_name)
    return tiny_models[class_name]


@pytest.mark.slow
@pytest.mark.parametrize("class_name", CLASSES)
def test_each_pipeline_class_edits_a_real_photo_through_the_guard(
    make_guard: GuardFactory, tiny_models: dict[str, Path], class_name: str, tmp_path: Path
) -> None:
    model_dir = _model_dir(tiny_models, class_name, tmp_path)
    guard = make_guard(editor="diffusers", diffusers_model_dir=model_dir, **FAST)
    assert guard.editor.name == f"diffusers/{class_name}"
    enroll_model(guard, scopes=("prompt_edit",))
    steps: list[tuple[int, int]] = []
    request = EditRequest(
        image=crop("t1", PORTRAIT),
        operation="prompt_edit",
        requester=REQUESTER,
        prompt="make the background a snowy street",
        params={"seed": 7},
    )
    result = guard.edit(request, progress=lambda done, total: steps.append((done, total)))
    assert steps[-1] == (2, 2)
    # The face was kept as it was, so the consented person is still the same person.
    assert result.image is not None, result.decision.reasons
    assert "identity_preserved" in result.decision.reason_codes
    output = guard.decode(result.image)
    assert output.rgb.shape == sample_rgb("t1")[150:886, 0:262].shape  # RGB, as the input
    assert output.source_format == "PNG"
    record = result.editor_record
    assert record["pipeline_class"] == class_name and record["seed"] == 7
    assert record["weights_sha256"] == identify_model(model_dir).weights_sha256
    reading = read_manifest(result.image, "image/png")
    assert reading.guard_assertion is not None
    assert reading.guard_assertion["editor"] == dict(record)


@pytest.mark.slow
@pytest.mark.parametrize("class_name", CLASSES)
def test_protected_faces_are_unchanged_pixel_for_pixel(
    tiny_models: dict[str, Path], class_name: str, tmp_path: Path, face_engine: object
) -> None:
    model_dir = _model_dir(tiny_models, class_name, tmp_path)
    editor = DiffusersEditor(Settings(data_dir=tmp_path, diffusers_model_dir=model_dir, **FAST))
    portrait = sample_rgb("t1")[150:886, 0:262]
    faces = face_engine.detect_and_embed(portrait)  # type: ignore[attr-defined]
    prompt = "turn the coat red"
    kept = editor.edit(portrait, faces, "prompt_edit", {"seed": 1}, prompt=prompt)
    loose = editor.edit(
        portrait, faces, "prompt_edit", {"seed": 1, "protect_faces": False}, prompt=prompt
    )
    assert kept.shape == portrait.shape and kept.dtype == np.uint8
    for face in faces:
        x0, y0, x1, y1 = protected_box(face.bbox, portrait.shape[:2])
        assert np.array_equal(kept[y0:y1, x0:x1], portrait[y0:y1, x0:x1])
        assert not np.array_equal(loose[y0:y1, x0:x1], portrait[y0:y1, x0:x1])
    # Outside the faces the edit is the model's, and a fixed seed repeats it exactly.
    assert not np.array_equal(kept, portrait)
    again = editor.edit(portrait, faces, "prompt_edit", {"seed": 1}, prompt=prompt)
    assert np.array_equal(kept, again)


def test_the_weights_hash_is_stable_and_follows_the_files(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    model_dir = shutil.copytree(tiny_models["FluxKontextPipeline"], tmp_path / "copy")
    cache = tmp_path / "cache.json"
    first = identify_model(model_dir, cache=cache)
    assert first == identify_model(model_dir, cache=cache) == identify_model(model_dir)
    # text_encoder, text_encoder_2, transformer and vae: one safetensors file each
    assert first.weight_files == 4 and len(json.loads(cache.read_text())) == 4
    assert first.pipeline_class == "FluxKontextPipeline"
    weights = sorted(model_dir.rglob("*.safetensors"))[0]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    changed = identify_model(model_dir, cache=cache)
    assert changed.weights_sha256 != first.weights_sha256
    assert changed.model_index_sha256 == first.model_index_sha256


def test_missing_unsupported_and_corrupt_models_are_clear_errors(
    make_guard: GuardFactory, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="GUARD_DIFFUSERS_MODEL_DIR"):
        create_editor(Settings(data_dir=tmp_path, editor="diffusers"))
    with pytest.raises(ConfigurationError, match="is not a directory"):
        create_editor(
            Settings(data_dir=tmp_path, editor="diffusers", diffusers_model_dir=tmp_path / "no")
        )
    other = shutil.copytree(tiny_models["FluxKontextPipeline"], tmp_path / "other")
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "FluxPipeline"}))
    with pytest.raises(ConfigurationError, match="names FluxPipeline; the diffusers editor"):
        create_editor(Settings(data_dir=tmp_path, editor="diffusers", diffusers_model_dir=other))

    corrupt = shutil.copytree(tiny_models["FluxKontextPipeline"], tmp_path / "corrupt")
    weights = next((corrupt / "transformer").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    guard = make_guard(editor="diffusers", diffusers_model_dir=corrupt, **FAST)
    enroll_model(guard, scopes=("prompt_edit",))
    request = EditRequest(
        image=crop("t1", PORTRAIT), operation="prompt_edit", requester=REQUESTER, prompt="snow"
    )
    with pytest.raises(Unavailable, match="cannot be loaded"):
        guard.edit(request)
    assert _manifests(guard) == 0  # nothing was stamped or stored


def test_bad_requests_and_timeouts(make_guard: GuardFactory, tiny_models: dict[str, Path]) -> None:
    guard = make_guard(
        editor="diffusers",
        diffusers_model_dir=tiny_models["StableDiffusionInstructPix2PixPipeline"],
        diffusers_timeout_s=0.001,
        **FAST,
    )
    enroll_model(guard, scopes=("prompt_edit",))

    def edit(prompt: str, **params: str | int | float | bool) -> object:
        return guard.edit(
            EditRequest(
                image=crop("t1", PORTRAIT),
                operation="prompt_edit",
                requester=REQUESTER,
                prompt=prompt,
                params=params,
            )
        )

    with pytest.raises(InvalidInput, match="needs a prompt"):
        edit("  ")
    with pytest.raises(InvalidInput, match="unknown parameter"):
        edit("snow", strength=3)
    with pytest.raises(InvalidInput, match="steps must be"):
        edit("snow", steps=0)
    with pytest.raises(EditTimedOut, match="GUARD_DIFFUSERS_TIMEOUT_S"):
        edit("snow")
    assert _manifests(guard) == 0


class _Stop(Exception):
    """What an edit job's step callback raises when its job was cancelled."""


def test_a_step_callback_that_raises_stops_the_model_and_nothing_is_released(
    make_guard: GuardFactory, tiny_models: dict[str, Path]
) -> None:
    """How a cancelled edit job stops a diffusion edit mid-run (guard/jobs/service.py)."""
    guard = make_guard(
        editor="diffusers",
        diffusers_model_dir=tiny_models["StableDiffusionInstructPix2PixPipeline"],
        diffusers_resolution=96,
        diffusers_steps=8,
    )
    enroll_model(guard, scopes=("prompt_edit",))
    steps: list[int] = []

    def progress(done: int, total: int) -> None:
        steps.append(done)
        if done == 3:
            raise _Stop

    request = EditRequest(
        image=crop("t1", PORTRAIT), operation="prompt_edit", requester=REQUESTER, prompt="snow"
    )
    with pytest.raises(_Stop):
        guard.edit(request, progress=progress)
    assert steps == [1, 2, 3]  # steps 4-8 never ran
    entries = guard.audit.entries(limit=guard.audit.size())
    assert [e["stage"] for _, e in entries if e["kind"] == "decision"] == ["input"]
    assert not any(e["kind"] == "release" for _, e in entries)
    assert _manifests(guard) == 0


def _manifests(guard: Guard) -> int:
    with guard.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(ManifestRow)) or 0)


def test_working_size_keeps_the_aspect_on_the_model_grid() -> None:
    assert working_size(736, 262, 1024, 16) == (1024, 368)
    assert working_size(100, 100, 96, 16) == (96, 96)
    assert working_size(5000, 10, 64, 8) == (64, 8)


def test_the_editor_is_chosen_by_setting(tmp_path: Path) -> None:
    assert create_editor(Settings(data_dir=tmp_path)).name == "classic"


def test_the_service_reports_edit_progress(
    make_guard: GuardFactory, tiny_models: dict[str, Path]
) -> None:
    from guard.api.service import Service

    guard = make_guard(
        editor="diffusers", diffusers_model_dir=tiny_models["FluxKontextPipeline"], **FAST
    )
    enroll_model(guard, scopes=("prompt_edit",))
    service = Service.build(guard.settings, guard)
    seen: list[float] = []
    report = service.metrics.report_edit_progress

    def spy(done: int, total: int) -> None:
        report(done, total)
        seen.append(service.metrics.edit_progress._value.get())

    service.metrics.report_edit_progress = spy  # type: ignore[method-assign]
    request = EditRequest(
        image=crop("t1", PORTRAIT), operation="prompt_edit", requester=REQUESTER, prompt="snow"
    )
    assert service.edit(request).image is not None
    assert seen == [0.5, 1.0, 0.0]  # two steps, then idle again
    assert b"guard_edit_progress 0.0" in service.metrics.exposition()


@pytest.mark.slow
def test_guard_edit_with_the_diffusers_editor_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path]
) -> None:
    from typer.testing import CliRunner

    from guard.cli import app

    monkeypatch.setenv("GUARD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("GUARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("GUARD_DIFFUSERS_MODEL_DIR", str(tiny_models["FluxKontextPipeline"]))
    monkeypatch.setenv("GUARD_DIFFUSERS_RESOLUTION", "96")
    monkeypatch.setenv("GUARD_DIFFUSERS_STEPS", "2")
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    guard = Guard(Settings())
    enroll_model(guard, scopes=("prompt_edit",))
    guard.close()
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(crop("t1", PORTRAIT))
    command = ["edit", str(photo), "--as", REQUESTER, "--prompt", "a snowy street"]
    done = runner.invoke(
        app, [*command, "--editor", "diffusers", "--out", str(tmp_path / "o.png"), "--json"]
    )
    assert done.exit_code == 0, done.output
    shown = json.loads(done.stdout)
    assert shown["editor"] == "diffusers/FluxKontextPipeline"
    assert shown["editor_record"]["steps"] == 2 and (tmp_path / "o.png").stat().st_size > 0
    classic = runner.invoke(app, [*command, "--out", str(tmp_path / "c.png")])
    assert classic.exit_code == 2 and "choose an operation with --op" in classic.output
    bad = runner.invoke(app, [*command, "--editor", "magic", "--out", str(tmp_path / "m.png")])
    assert bad.exit_code == 2 and "classic or diffusers" in bad.output
