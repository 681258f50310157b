"""``Guard.edit`` tells its phase callback what it is doing, so a progress display says
"editing" only once the editor runs: never for a request the input gate denied."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from guard import EditRequest
from guard.cli import app
from guard.requests import EditPhase
from guard.samples import sample_bytes
from tests.support.guards import GuardFactory


def edit_phases(
    make_guard: GuardFactory, image: bytes
) -> tuple[bool, list[EditPhase], list[tuple[int, int]]]:
    guard = make_guard()
    phases: list[EditPhase] = []
    steps: list[tuple[int, int]] = []
    result = guard.edit(
        EditRequest(image=image, operation="relight", requester="acme/app"),
        progress=lambda done, total: steps.append((done, total)),
        phase=phases.append,
    )
    return result.image is not None, phases, steps


def test_a_denied_input_never_reaches_the_edit_phase(make_guard: GuardFactory) -> None:
    # The astronaut is a real person nobody enrolled: the input gate denies (no_consent).
    released, phases, steps = edit_phases(make_guard, sample_bytes("astronaut"))
    assert not released
    assert phases == ["input_gate"] and steps == []


def test_an_allowed_edit_goes_through_every_phase(make_guard: GuardFactory) -> None:
    released, phases, steps = edit_phases(make_guard, sample_bytes("coffee"))  # no face
    assert released
    assert phases == ["input_gate", "edit", "output_scan", "stamp"] and steps == [(1, 1)]


def test_guard_edit_progress_bar_on_a_denied_request(
    make_guard: GuardFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_guard().settings
    monkeypatch.setenv("GUARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GUARD_DATABASE_URL", settings.database_url)
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(sample_bytes("astronaut"))
    result = CliRunner().invoke(
        app, ["edit", str(photo), "--op", "relight", "--out", str(tmp_path / "out.png")]
    )
    assert result.exit_code == 1, result.output
    assert "checking the input" in result.stderr and "editing" not in result.stderr
