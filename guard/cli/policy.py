"""``guard policy``: check a policy file; explain a decision rule by rule."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from guard.cli.common import EXIT_INVALID, JsonFlag, err, errors, open_guard, out, read_file
from guard.cli.render import emit_json
from guard.policy import explain_entry, policy_problems

policy_app = typer.Typer(no_args_is_help=True, help="Policy files.")


@policy_app.command("check")
def policy_check(policy_file: Path, json_output: JsonFlag = False) -> None:
    """Validate a policy file; every problem is reported with its line (exit 2 if any)."""
    with errors():
        text = read_file(policy_file).decode("utf-8", errors="replace")
    policy, problems = policy_problems(text)
    if json_output:
        emit_json(
            {
                "file": policy_file,
                "valid": policy is not None,
                "policy": {"id": policy.id, "version": policy.version} if policy else None,
                "problems": problems,
            }
        )
    elif policy is not None:
        out.print(
            f"{policy_file}: valid: policy {policy.id} version {policy.version}, "
            f"{len(policy.rules)} rules ({', '.join(rule.id for rule in policy.rules)})"
        )
    else:
        for problem in problems:
            err.print(f"[red]{policy_file}:{problem}[/red]")
    if policy is None:
        raise typer.Exit(EXIT_INVALID)


@policy_app.command("explain")
def policy_explain(decision_id: str, json_output: JsonFlag = False) -> None:
    """Why decision DECISION_ID came out as it did: every rule of its policy, whether it
    applied, passed or failed (and with which reason codes), from the decision's audit entry,
    next to the rule's text in the policy file in force."""
    with errors():
        guard = open_guard()
        index = guard.audit.index_of_decision(decision_id)
        policy = guard.policies.current()
        policy_file = guard.settings.policy_file
        text = read_file(policy_file).decode("utf-8", errors="replace")
        explanation = explain_entry(index, guard.audit.entry(index), policy, text)
    if json_output:
        emit_json(
            {
                **asdict(explanation),
                "rules": [{**asdict(r), "outcome": r.outcome} for r in explanation.rules],
                "policy_file": policy_file,
            }
        )
        return
    e = explanation
    colour = "red" if e.verdict == "deny" else "green"
    out.print(
        f"decision {e.decision_id}: [{colour}]{e.verdict}[/{colour}] ({e.stage} stage, "
        f"operation {e.operation}, {e.time}, audit entry {e.entry_index})"
    )
    out.print(f"  reasons: {', '.join(e.reason_codes) or '-'}")
    out.print(f"  policy {e.policy_id} version {e.policy_version}")
    if not e.same_policy:
        err.print(
            f"[yellow]the policy in force now is {policy.id} version {policy.version}, not the "
            "one this decision was made under: showing the recorded rule results only[/yellow]"
        )
    marks = {"passed": "[green]passed[/green]", "failed": "[red]FAILED[/red]"}
    for rule in e.rules:
        where = f"  ({policy_file.name} line {rule.line})" if rule.line else ""
        out.print(f"\n  {rule.rule_id}: {marks.get(rule.outcome, rule.outcome)}{where}")
        for result in rule.results:
            target = "request" if result.face_index is None else f"face {result.face_index}"
            verdict = "passed" if result.passed else "failed"
            codes = f" -> {', '.join(result.reason_codes)}" if result.reason_codes else ""
            out.print(f"    {target}: {verdict}{codes}")
        if rule.description:
            out.print(f"    [dim]{rule.description}[/dim]")
        for line in rule.text.splitlines():
            out.print(f"    {line}", style="dim", highlight=False, markup=False)
