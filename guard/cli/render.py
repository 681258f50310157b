"""Printing: decisions, verification reports and JSON for ``--json``."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from guard.cli.common import out
from guard.policy import Decision, Verdict

if TYPE_CHECKING:
    from guard.provenance import DevSigningFiles, VerificationReport


def jsonable(value: Any) -> Any:
    if isinstance(value, Decision):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(value), indent=2, sort_keys=True) + "\n")


def print_decision(decision: Decision) -> None:
    colour = "red" if decision.verdict is Verdict.DENY else "green"
    out.print(
        f"[bold {colour}]{decision.verdict.value.upper()}[/bold {colour}] "
        f"({decision.stage} stage, policy {decision.policy_id} v{decision.policy_version}, "
        f"{decision.decision_id})"
    )
    if decision.faces:
        table = Table("face", "box x0,y0,x1,y1", "who", "similarity", "verdict", "reason")
        for face in decision.faces:
            reason = face.reasons[0]
            who = reason.evidence.get("figure_id") or reason.evidence.get("subject_id") or "unknown"
            similarity = reason.evidence.get("similarity")
            colour = "red" if face.verdict is Verdict.DENY else "green"
            table.add_row(
                str(face.face_index),
                ",".join(map(str, face.bbox)),
                str(who),
                f"{similarity:.3f}" if isinstance(similarity, float) else "",
                f"[{colour}]{face.verdict.value}[/{colour}]",
                reason.code.value,
            )
        out.print(table)
    for reason in decision.reasons:
        if "face_index" not in reason.evidence or "output_face_index" in reason.evidence:
            out.print(f"  {reason.code.value}: {reason.message}")
    if decision.conditions:
        out.print(f"  conditions: {', '.join(decision.conditions)}")


def print_verification(report: VerificationReport) -> None:
    colour = {0: "green", 1: "red"}.get(report.exit_code, "yellow")
    out.print(f"[bold {colour}]{report.outcome.value.upper()}[/bold {colour}]: {report.summary}")
    manifest = report.manifest
    if manifest.found:
        trust = "trusted" if manifest.trusted else "not on your trust list"
        out.print(f"  C2PA manifest {manifest.label}: {manifest.state} ({trust})")
        for problem in manifest.problems:
            out.print(f"    failed: {problem}")
    else:
        out.print(
            f"  C2PA manifest: none{f' ({manifest.reader_error})' if manifest.reader_error else ''}"
        )
    mark = report.watermark
    if mark is not None:
        found = f"record {mark.record_id}, confidence {mark.confidence}" if mark.found else "none"
        out.print(f"  watermark ({mark.algorithm}): {found}")
    if report.recovered is not None:
        recovered = report.recovered
        distance = (
            f", fingerprint distance {recovered.fingerprint_distance}"
            if recovered.fingerprint_distance is not None
            else ""
        )
        out.print(f"  recovered via {recovered.via}: manifest {recovered.manifest_label}{distance}")
    if report.decision is not None:
        decision = report.decision
        out.print(
            f"  decision {decision.get('decision_id')}: {decision.get('verdict')} "
            f"({', '.join(decision.get('reason_codes', []))}; policy "
            f"{decision.get('policy', {}).get('id')} v{decision.get('policy', {}).get('version')})"
        )


def print_signing(signing: DevSigningFiles | None) -> None:
    """Say so when a development C2PA identity was just made (it is trusted nowhere)."""
    from guard.provenance import DEV_CA_NOTICE

    if signing is None or not signing.created:
        return
    out.print(f"created a development C2PA CA {signing.ca} and signing certificate {signing.chain}")
    out.print(f"[yellow]{DEV_CA_NOTICE}[/yellow]")
