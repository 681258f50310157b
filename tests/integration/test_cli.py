"""The ``guard`` command end to end (SQLite), human and JSON output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guard.cli import app
from guard.db import migration_heads
from guard.media import RGBImage, decode_image, encode_image
from guard.samples import flip, jpeg, sample_bytes, sample_rgb

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GUARD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("GUARD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    t1 = sample_rgb("t1")
    (photos / "enroll.jpg").write_bytes(encode_image(t1[230:450, 20:230], "jpeg"))
    (photos / "portrait.jpg").write_bytes(encode_image(t1[150:886, 0:262], "jpeg"))
    (photos / "group.jpg").write_bytes(sample_bytes("t1"))
    (photos / "hanks-upload.jpg").write_bytes(
        encode_image(jpeg(flip(sample_rgb("tom_hanks"))), "jpeg")
    )
    figures = tmp_path / "figures"
    (figures / "tom-hanks").mkdir(parents=True)
    (figures / "tom-hanks" / "ref.png").write_bytes(sample_bytes("tom_hanks"))
    (figures / "tom-hanks" / "figure.json").write_text(
        '{"name": "Tom Hanks", "aliases": ["Hanks"]}'
    )
    (figures / "eileen-collins").mkdir()
    (figures / "eileen-collins" / "ref.png").write_bytes(sample_bytes("astronaut"))
    (figures / "nobody").mkdir()
    (figures / "nobody" / "coffee.png").write_bytes(
        encode_image(__import__("skimage").data.coffee())
    )
    (tmp_path / "consent.pdf").write_bytes(b"%PDF signed consent")
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def run_json(*args: str) -> object:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)  # progress bars and warnings go to stderr


def assert_explained(decision_id: str) -> None:
    """`guard policy explain` on the group photo's deny: five unknown faces, one consented."""
    explained = run_json("policy", "explain", decision_id)
    outcomes = {r["rule_id"]: r["outcome"] for r in explained["rules"]}  # type: ignore[index]
    assert outcomes == {
        "permitted-operations": "passed",
        "public-figures-need-their-own-consent": "not applied",
        "public-figures-confirm-their-own-consent": "not applied",
        "subjects-need-consent": "passed",
        "no-unknown-faces": "failed",
        "prompt-names-no-public-figure": "passed",
        "prompt-named-subjects-need-consent": "passed",
        "no-sexual-content-of-real-people": "passed",
        "identity-held": "not applied",
    }
    unknown = next(r for r in explained["rules"] if r["rule_id"] == "no-unknown-faces")  # type: ignore[index]
    assert [r["passed"] for r in unknown["results"]].count(False) == 5 and unknown["line"] > 1
    assert (
        unknown["text"]
        == "applies_to: each_face\nforbid:\n  face_kind: [unknown]\nreason: no_consent"
    )
    code, output = run("policy", "explain", decision_id)
    assert code == 0 and "no-unknown-faces: FAILED  (default.yaml line" in output
    assert "failed -> no_consent" in output and "request: passed" in output
    code, output = run("policy", "explain", "dec_nonexistent")
    assert code != 0 and "no audit entry for decision dec_nonexistent" in output


@pytest.mark.slow
def test_full_cli_flow(workdir: Path) -> None:
    code, output = run("init")
    (head,) = migration_heads()
    assert code == 0 and f"schema {head}" in output and "template.key" in output
    assert "checkpoint-key.pem" in output
    assert "on no public" in output and "signing-chain.pem" in output

    built = run_json("blocklist", "build", "figures")
    assert built["figures"] == 2  # type: ignore[index]
    assert built["problems"][0]["figure_id"] == "nobody"  # type: ignore[index]
    figures = run_json("blocklist", "list")
    assert [f["id"] for f in figures] == ["eileen-collins", "tom-hanks"]  # type: ignore[union-attr, index]

    subject = run_json("subjects", "add", "--tenant", "acme", "--name", "Model A")["id"]  # type: ignore[index]
    code, output = run("subjects", "enroll", subject, "photos/enroll.jpg")
    assert code == 0 and "enrolled 1 template" in output
    code, output = run("subjects", "enroll", subject, "photos/group.jpg")
    assert code == 2 and "shows 6 faces" in output
    grant = run_json(
        "consent",
        "grant",
        subject,
        "--to",
        "acme/app",
        "--scope",
        "relight",
        "--scope",
        "background_blur",
        "--evidence",
        "consent.pdf",
        "--days",
        "30",
    )
    assert grant["scopes"] == ["background_blur", "relight"]  # type: ignore[index]

    code, output = run("check", "photos/portrait.jpg", "--as", "acme/app", "--op", "relight")
    assert code == 0 and "ALLOW_WITH_CONDITIONS" in output and subject in output
    code, output = run("check", "photos/hanks-upload.jpg", "--as", "acme/app")
    assert code == 1 and "public_figure" in output and "tom-hanks" in output
    decision = run_json("check", "photos/group.jpg", "--as", "acme/app", "--op", "background_blur")
    assert decision["verdict"] == "deny" and len(decision["faces"]) == 6  # type: ignore[index]
    assert "embedding" not in json.dumps(decision)
    assert_explained(decision["decision_id"])  # type: ignore[index]

    relight = ("edit", "photos/portrait.jpg", "--op", "relight", "--as", "acme/app")
    code, output = run(*relight, "--param", "direction=right", "--out", "out/relit.jpg")
    assert code == 0 and (workdir / "out" / "relit.jpg").stat().st_size > 1000
    assert "identity_preserved" in output
    assert "watermark record" in output and "C2PA manifest urn:c2pa:" in output
    code, output = run(*relight, "--prompt", "as Tom Hanks", "--out", "out/no.png")
    assert code == 1 and not (workdir / "out" / "no.png").exists()

    run("consent", "revoke", grant["id"])  # type: ignore[index]
    assert run_json("check", "photos/portrait.jpg", "--as", "acme/app")["reason_codes"] == [
        "consent_revoked"
    ]  # type: ignore[index]
    listed = run_json("consent", "list", "--subject", subject)
    assert listed[0]["revoked_at"] is not None  # type: ignore[index]

    code, output = run("subjects", "erase", subject, "--yes")
    assert code == 0 and "1 template(s)" in output
    assert run_json("subjects", "list") == []

    code, _ = run("blocklist", "remove", "tom-hanks")
    assert code == 0
    assert run_json("check", "photos/hanks-upload.jpg", "--as", "acme/app")["reason_codes"] == [
        "no_consent"
    ]  # type: ignore[index]


def sample_rgb_of(path: Path) -> RGBImage:
    return decode_image(path.read_bytes()).rgb


@pytest.mark.slow
def test_stamp_and_verify(workdir: Path) -> None:
    assert run("init")[0] == 0
    assert run("blocklist", "build", "figures")[0] == 0
    stamp = ("stamp", "--generator", "acme-gen", "--as", "acme/app")
    code, output = run(*stamp, "figures/nobody/coffee.png", "--out", "out/gen.png")
    assert code == 0 and "watermark record" in output and "C2PA manifest urn:c2pa:" in output
    code, output = run(*stamp, "figures/nobody/coffee.png", "--out", "out/gen.webp")
    assert code == 0 and (workdir / "out" / "gen.webp").exists()
    code, output = run(*stamp, "figures/tom-hanks/ref.png", "--out", "out/th.png")
    assert code == 1 and "output_public_figure" in output
    assert not (workdir / "out" / "th.png").exists()

    code, output = run("verify", "out/gen.png")
    assert code == 0 and "VALID" in output and "no_faces" in output
    report = json.loads(runner.invoke(app, ["verify", "out/gen.webp", "--json"]).stdout)
    assert report["outcome"] == "valid" and report["exit_code"] == 0
    assert report["decision"]["policy"]["id"] == "default"
    stripped = encode_image(jpeg(sample_rgb_of(workdir / "out" / "gen.png"), 80))
    (workdir / "out" / "stripped.png").write_bytes(stripped)
    code, output = run("verify", "out/stripped.png")
    assert code == 0 and "RECOVERED" in output and "recovered via watermark" in output
    code, output = run("verify", "photos/group.jpg")
    assert code == 1 and "NOT_FROM_THIS_GUARD" in output
    (workdir / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, output = run("verify", "garbage.png")
    assert code == 2 and "ERROR" in output
    code, output = run("verify", "missing.png")
    assert code == 2 and "cannot read" in output


def test_secrets_init_creates_the_signing_identity_once(workdir: Path) -> None:
    code, output = run("secrets", "init")
    assert code == 0 and "development C2PA CA" in output and "on no public" in output
    created = run_json("secrets", "init")
    assert created["keys_created"] == [] and created["signing"]["created"] is False  # type: ignore[index]
    assert (workdir / "var" / "keys" / "c2pa" / "signing-key.pem").stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_add_single_figure_and_errors(workdir: Path) -> None:
    assert run("init")[0] == 0
    code, output = run(
        "blocklist", "add", "tom-hanks", "figures/tom-hanks/ref.png", "--name", "Tom Hanks"
    )
    assert code == 0 and "1 reference face" in output
    code, output = run("blocklist", "add", "Bad Id", "figures/tom-hanks/ref.png", "--name", "X")
    assert code == 2 and "figure id" in output
    code, output = run("check", "does-not-exist.jpg")
    assert code == 2 and "cannot read" in output
    (workdir / "empty.jpg").write_bytes(b"")
    code, output = run("check", "empty.jpg")
    assert code == 2 and "empty" in output
    code, output = run("edit", "photos/portrait.jpg", "--op", "relight", "--out", "x.gif")
    assert code == 2 and ".gif" in output
    code, output = run("consent", "grant", "sub_x", "--to", "a", "--scope", "relight")
    assert code == 2 and "--evidence" in output


def test_uninitialised_data_dir_is_unavailable(workdir: Path) -> None:
    code, output = run("check", "photos/portrait.jpg")
    # Not even a denial may leave unaudited, and there is no audit log yet: 503, not deny.
    assert code == 3 and "run `guard" in output
    code, output = run("subjects", "list")
    assert code == 3 and "guard init" in output


@pytest.mark.slow
def test_quickstart_example_runs() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    completed = subprocess.run(
        [sys.executable, str(root / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "her portrait: allow_with_conditions" in completed.stdout
    assert "Tom Hanks: ('public_figure',)" in completed.stdout
    assert "edit: allow_with_conditions" in completed.stdout
    assert "verify: valid" in completed.stdout
    assert "stamp: allow_with_conditions valid" in completed.stdout
    assert "stripped copy: recovered via watermark" in completed.stdout


@pytest.mark.slow
def test_audit_commands(workdir: Path) -> None:
    from guard.audit import open_audit_log
    from guard.config import Settings

    assert run("init")[0] == 0
    log = open_audit_log(Settings())
    for i in range(5):
        log.append({"kind": "test", "n": i})
    code, output = run("audit", "tail", "-n", "2")
    assert code == 0 and '"n": 3' in output and '"n": 4' in output and '"n": 2' not in output
    shown = run_json("audit", "show", "1")
    assert shown["entry"] == {"kind": "test", "n": 1}  # type: ignore[index]
    proof = run_json("audit", "prove", "0", "--size", "4")
    assert isinstance(proof, dict)
    assert proof["leaf_index"] == 0 and len(proof["inclusion_proof"]) == 2
    code, output = run("audit", "prove", "0", "--size", "4")
    assert code == 0 and f"entry 0, leaf hash {proof['leaf_hash']}" in output
    assert all(step in output for step in proof["inclusion_proof"])
    origin = log.origin  # likeness-guard/<16 hex of this deployment's key>
    assert f"{origin}\n4\n" in output  # the checkpoint it is proved against
    checkpoint = runner.invoke(app, ["audit", "checkpoint"])
    assert checkpoint.exit_code == 0
    assert checkpoint.stdout.startswith(f"{origin}\n5\n")
    signed = run_json("audit", "checkpoint", "--size", "4")
    assert isinstance(signed, dict) and signed["size"] == 4
    assert signed["checkpoint"].startswith(f"{origin}\n4\n")
    verifier_key = (workdir / "var" / "keys" / "audit" / "checkpoint.vkey").read_text().strip()
    assert signed["verifier_key"] == verifier_key
    code, output = run("audit", "export", "--out", "audit.jsonl")
    assert code == 0 and "wrote 5 entries" in output
    exported = run_json("audit", "export", "--out", "again.jsonl")
    assert exported == {"output": "again.jsonl", "entries": 5}
    assert (workdir / "again.jsonl").read_text().count("\n") == 6  # entries + latest checkpoint
    vkey = "var/keys/audit/checkpoint.vkey"
    code, output = run("audit", "verify", "audit.jsonl", "--key", vkey)
    assert code == 0 and "OK" in output
    lines = (workdir / "audit.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"n": 2', '"n": 22')
    (workdir / "tampered.jsonl").write_text("\n".join(lines) + "\n")
    code, output = run("audit", "verify", "tampered.jsonl", "--key", vkey)
    assert code == 1 and "first bad entry: 2" in output
    code, output = run("audit", "show", "99")
    assert code == 2 and "no audit entry 99" in output
    subject = run_json("subjects", "add", "--tenant", "acme")["id"]  # type: ignore[index]
    report = run_json("audit", "subject", subject)
    assert [item["entry"]["kind"] for item in report] == ["subject_created"]  # type: ignore[index, union-attr]


def test_api_keys_create_list_revoke(workdir: Path) -> None:
    assert run("init")[0] == 0
    created = run_json("keys", "create", "--tenant", "acme", "--role", "auditor", "--label", "x")
    assert isinstance(created, dict)
    token = created["token"]
    assert token.startswith("lg_")
    listed = run_json("keys", "list")
    assert isinstance(listed, list) and listed[0]["role"] == "auditor"
    assert token.split(".")[1] not in json.dumps(listed)  # the secret is shown once only
    code, output = run("keys", "create", "--tenant", "acme", "--role", "root")
    assert code == 2 and "role must be one of" in output
    code, output = run("keys", "revoke", created["key"]["id"])
    assert code == 0 and "revoked" in output
    assert run("keys", "revoke", created["key"]["id"])[0] == 2


def test_serve_runs_one_worker_with_uvicorn(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    # Forwarded headers are believed from GUARD_TRUSTED_PROXIES only (uvicorn's own default
    # would be FORWARDED_ALLOW_IPS, or loopback).
    monkeypatch.setenv("GUARD_TRUSTED_PROXIES", "172.30.42.10")
    assert run("serve", "--port", "9999")[0] == 0
    assert calls == [
        {
            "app": "guard.api.app:app_from_environment",
            "factory": True,
            "host": "127.0.0.1",
            "port": 9999,
            "log_level": "info",
            "forwarded_allow_ips": ["172.30.42.10"],
        }
    ]


def test_serve_with_workers_listens_on_a_tcp_nodelay_capable_socket(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    seen: list[tuple[int, int]] = []

    class FakeSupervisor:
        def __init__(self, config: object, sockets: list[socket.socket]) -> None:
            assert getattr(config, "workers", None) == 2
            assert getattr(config, "forwarded_allow_ips", None) == ["127.0.0.1", "::1"]
            seen.extend((s.proto, s.getsockname()[1]) for s in sockets)
            for s in sockets:
                s.close()

        def run(self) -> None:
            pass

    monkeypatch.setattr("guard.api.server.Multiprocess", FakeSupervisor)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, output = run("serve", "--workers", "2", "--port", str(port))
    assert code == 0, output
    assert "GUARD_REDIS_URL is not set" in output
    # proto IPPROTO_TCP is what makes asyncio set TCP_NODELAY on accepted connections.
    assert seen == [(socket.IPPROTO_TCP, port)]


def test_policy_check(workdir: Path) -> None:
    from guard.config import DEFAULT_POLICY_FILE

    code, output = run("policy", "check", str(DEFAULT_POLICY_FILE))
    assert code == 0 and "valid: policy default" in output
    bad = workdir / "bad.yaml"
    bad.write_text('id: x\nversion: "1"\nrules:\n  - id: a\n    forbid: {has_faces: true}\n')
    code, output = run("policy", "check", str(bad))
    assert code == 2 and "line 4: rules.0: " in output and "reason" in output
    report = runner.invoke(app, ["policy", "check", str(bad), "--json"])
    assert json.loads(report.stdout)["problems"][0]["line"] == 4
    for shipped in ("strict", "newsroom"):
        code, output = run("policy", "check", str(DEFAULT_POLICY_FILE.parent / f"{shipped}.yaml"))
        assert code == 0 and f"valid: policy {shipped}" in output


@pytest.mark.slow
def test_operator_keys_and_public_figure_links(workdir: Path) -> None:
    """Only the operator (whoever holds the data folder, or an operator API key) links a
    subject to a public figure; the figure's face cannot be enrolled until then."""
    assert run("init")[0] == 0
    code, output = run("keys", "create", "--role", "operator")
    assert code == 0 and output.startswith("lg_") and "operator (no tenant)" in output
    assert run("keys", "create", "--role", "operator", "--tenant", "acme")[0] == 2
    assert run("keys", "create", "--role", "admin")[0] == 2  # a tenant role needs its tenant
    code, output = run("subjects", "add", "--tenant", "acme", "--public-figure", "tom-hanks")
    assert code == 2 and "No such option" in output

    assert run_json("blocklist", "build", "figures")["figures"] == 2  # type: ignore[index]
    subject = run_json("subjects", "add", "--tenant", "acme")["id"]  # type: ignore[index]
    code, output = run("subjects", "enroll", subject, "photos/hanks-upload.jpg")
    assert code == 2 and "enrollment_matches_public_figure" in output
    code, output = run("subjects", "link", subject, "nobody", "--evidence", "consent.pdf")
    assert code == 2 and "no public figure 'nobody'" in output
    linked = run_json("subjects", "link", subject, "tom-hanks", "--evidence", "consent.pdf")
    assert linked["public_figure_link"]["linked_by"].startswith("cli:")  # type: ignore[index]
    assert run("subjects", "enroll", subject, "photos/hanks-upload.jpg")[0] == 0
    assert run("subjects", "unlink", subject)[0] == 0
    assert run_json("audit", "export", "--out", "audit.jsonl")["entries"] > 0  # type: ignore[index]
    exported = Path("audit.jsonl").read_text()
    assert "public_figure_linked" in exported and "public_figure_unlinked" in exported
    assert '"actor": "cli:' in exported and "blocklist_changed" in exported
