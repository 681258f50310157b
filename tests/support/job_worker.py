"""A job worker process for the jobs tests, whose editor takes its time in steps.

    python -m tests.support.job_worker --steps 40 --step-s 0.2

Settings come from the environment, as for ``guard worker`` (GUARD_DATA_DIR, GUARD_DATABASE_URL,
...). The editor is the classic one, after ``steps`` pauses of ``step_s`` seconds, each
reported as a step, so a test can cancel it or kill its worker in the middle of a run.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from guard import Guard
from guard.api.keys import ApiKeyStore
from guard.api.views import outcome_view
from guard.config import Settings
from guard.editors import ClassicEditor, EditParams, ProgressCallback
from guard.faces import Face
from guard.jobs import EditJobs, run_worker
from guard.media import RGBImage


class SteppedEditor(ClassicEditor):
    """The classic editor, after ``steps`` reported pauses (a diffusion model's shape)."""

    def __init__(self, steps: int, step_s: float) -> None:
        self.steps, self.step_s = steps, step_s

    def edit(
        self,
        rgb: RGBImage,
        faces: Sequence[Face],
        operation: str,
        params: EditParams,
        *,
        prompt: str = "",
        progress: ProgressCallback | None = None,
    ) -> RGBImage:
        for step in range(self.steps):
            time.sleep(self.step_s)
            if progress is not None:
                progress(step + 1, self.steps)
        return super().edit(rgb, faces, operation, params, prompt=prompt)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--step-s", type=float, default=0.2)
    args = parser.parse_args()
    guard = Guard(Settings(), editor=SteppedEditor(args.steps, args.step_s))
    keys = ApiKeyStore(guard.db)
    jobs = EditJobs(
        guard,
        view=outcome_view(lambda: guard.registry),
        key_active=lambda key_id: keys.active(key_id) is not None,
    )
    print("worker ready", flush=True)
    asyncio.run(run_worker(jobs))


if __name__ == "__main__":
    main()
