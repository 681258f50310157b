"""``/web-static/console/verify.js``: the compliance console's in-browser receipt check, in
Chromium, on vectors from the real audit log (its PostgreSQL tables, its Ed25519 checkpoints).

Two logs give the vectors: one of our own (a fresh database, a key made here) so that receipts
exist at chosen tree sizes (every lone append signs a checkpoint at its size), and the
service's own log with the deployment's ``checkpoint.vkey``. Every vector, valid or tampered,
is also put to Python's :func:`~guard.audit.receipts.verify_receipt`: the two must agree.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import Browser, Page

from guard.audit.checkpoint import (
    AUDIT_KEY_NAME,
    LEGACY_ORIGIN,
    PUBLIC_KEY_FILE,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
)
from guard.audit.log import AuditLog
from guard.audit.receipts import Receipt, canonical_json, verify_receipt
from guard.audit.tables import AuditEntryRow
from guard.db import Database
from guard.errors import InvalidInput
from tests.support.databases import postgres_database
from tests.web.conftest import WebService

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

MODULE = "/web-static/console/verify.js"
VERIFY = f"async (args) => (await import('{MODULE}')).verifyReceipt(args)"
NOTES = [
    "Zoë 東京",  # two- and three-byte UTF-8
    "plain ascii",
    'quotes " and \\ backslash\nand a newline',  # JSON escapes in the stored text
    "emoji 🙂 (a surrogate pair in JS)",
    "line\u2028separator",
    "Ærøskøbing",
    "",
    "日本語のテキスト",
    "last",
]
# (leaf index, tree size) pairs with a checkpoint in our own log of len(NOTES) entries.
TREE_CASES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 7), (3, 7), (6, 7), (4, 6)]
TREE_CASES += [(0, 9), (5, 9), (8, 9), (2, 5)]


@dataclass(frozen=True)
class Vector:
    entry_text: str
    receipt: dict[str, Any]
    verifier_key: str

    def args(self) -> dict[str, Any]:
        return {"entryText": self.entry_text, "receipt": self.receipt, "verifierKey": self.vkey}

    @property
    def vkey(self) -> str:
        return self.verifier_key

    def python_ok(self) -> bool:
        """What Python's verify_receipt says (the receipt as the API returns it)."""
        receipt = Receipt(
            self.receipt["leaf_index"],
            self.receipt["leaf_hash"],
            self.receipt["checkpoint"],
            tuple(self.receipt["inclusion_proof"]),
        )
        try:
            verifier = CheckpointVerifier.from_key_string(self.verifier_key)
        except InvalidInput:
            return False
        return verify_receipt(receipt, verifier, self.entry_text.encode())

    def with_receipt(self, **changes: Any) -> Vector:
        return replace(self, receipt={**self.receipt, **changes})


@dataclass
class OwnLog:
    log: AuditLog
    key: Ed25519PrivateKey
    signer: CheckpointSigner

    def vector(self, index: int, size: int) -> Vector:
        with self.log.db.transaction() as session:
            row = session.get(AuditEntryRow, index)
            assert row is not None
            stored = row.entry
        receipt = self.log.receipt(index, size).to_dict()
        return Vector(stored, receipt, self.signer.verifier_key)


def sign_body(name: str, key: Ed25519PrivateKey, body: str) -> str:
    """A signed note over any body (also malformed ones), as CheckpointSigner.sign writes it."""
    key_id = CheckpointSigner(name, key)._key_id
    blob = base64.b64encode(key_id + key.sign(body.encode())).decode()
    return f"{body}\n\u2014 {name} {blob}\n"


def _entry(note: str, number: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"v": 2, "kind": "test_vector", "time": now, "tenant": "js-vectors", "note": note,
            "n": number}  # fmt: skip


@pytest.fixture(scope="module")
def own_log(postgres_server: str, postgres_template: str) -> Iterator[OwnLog]:
    with postgres_database(postgres_server, template=postgres_template) as url:
        key = Ed25519PrivateKey.generate()
        signer = CheckpointSigner(AUDIT_KEY_NAME, key)
        log = AuditLog(Database(url), signer)
        for number, note in enumerate(NOTES):
            receipt = log.append(_entry(note, number))
            assert receipt.leaf_index == number
            assert receipt.checkpoint == log.checkpoint(number + 1)
        try:
            yield OwnLog(log, key, signer)
        finally:
            log.db.engine.dispose()


@pytest.fixture(scope="module")
def deployment_vectors(web: WebService) -> dict[str, Vector]:
    """Receipts from the service's own log: on append (against each batch's checkpoint) and
    against the latest checkpoint, checked with the deployment's checkpoint.vkey."""
    log = web.guard.audit
    vkey = (web.guard.settings.audit_keys_dir / PUBLIC_KEY_FILE).read_text().strip()
    entries = [_entry(f"deployment {n}: Zoë 東京", n) for n in range(3)]
    appended = [log.append(entry) for entry in entries]
    texts = [canonical_json(entry).decode() for entry in entries]
    latest = [log.receipt(r.leaf_index) for r in appended]
    with log.db.transaction() as session:
        for receipt, text in zip(appended, texts, strict=True):
            row = session.get(AuditEntryRow, receipt.leaf_index)
            assert row is not None and row.entry == text
    return {
        "append-first": Vector(texts[0], appended[0].to_dict(), vkey),
        "append-last": Vector(texts[2], appended[2].to_dict(), vkey),
        "latest-first": Vector(texts[0], latest[0].to_dict(), vkey),
        "latest-middle": Vector(texts[1], latest[1].to_dict(), vkey),
        "latest-last": Vector(texts[2], latest[2].to_dict(), vkey),
    }


@pytest.fixture(scope="module")
def verifier_page(browser: Browser, web: WebService) -> Iterator[Page]:
    """One page for the module, on a same-origin page that carries the site's strict CSP
    (script-src 'self'), so every import below also proves the module loads under it."""
    context = browser.new_context(base_url=web.base_url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    response = page.goto(f"{web.base_url}/me")
    assert response is not None
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    yield page
    context.close()


def run_js(page: Page, args: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(VERIFY, args)
    return result


# --- valid receipts ---------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), TREE_CASES, ids=[f"{i}-of-{s}" for i, s in TREE_CASES])
def test_a_valid_receipt_verifies_at_any_index_and_size(
    verifier_page: Page, own_log: OwnLog, index: int, size: int
) -> None:
    vector = own_log.vector(index, size)
    assert vector.python_ok()
    result = run_js(verifier_page, vector.args())
    assert result["ok"] is True, result["reason"]
    checkpoint = Checkpoint.parse_body(vector.receipt["checkpoint"].partition("\n\n")[0] + "\n")
    assert result["checkpoint"] == {
        "origin": own_log.signer.origin,
        "size": size,
        "rootHex": checkpoint.root.hex(),
        "time": checkpoint.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


@pytest.mark.parametrize(
    "name", ["append-first", "append-last", "latest-first", "latest-middle", "latest-last"]
)
def test_the_deployments_own_receipts_verify_with_its_vkey(
    verifier_page: Page, deployment_vectors: dict[str, Vector], name: str
) -> None:
    vector = deployment_vectors[name]
    assert vector.python_ok()
    result = run_js(verifier_page, vector.args())
    assert result["ok"] is True, result["reason"]


def test_a_checkpoint_under_the_legacy_origin_still_verifies(
    verifier_page: Page, own_log: OwnLog
) -> None:
    vector = own_log.vector(3, 7)
    parsed = CheckpointVerifier.from_key_string(vector.vkey).verify(vector.receipt["checkpoint"])
    legacy = own_log.signer.sign(replace(parsed, origin=LEGACY_ORIGIN))
    vector = vector.with_receipt(checkpoint=legacy)
    assert vector.python_ok()
    result = run_js(verifier_page, vector.args())
    assert result["ok"] is True and result["checkpoint"]["origin"] == LEGACY_ORIGIN


def test_the_pieces_match_python(verifier_page: Page, own_log: OwnLog) -> None:
    """leafHash, parseVerifierKey and rootFromInclusion, exported for the console, alone."""
    vector = own_log.vector(4, 6)
    found = verifier_page.evaluate(
        """async ({ text, vkey, index, size, proof }) => {
          const m = await import('/web-static/console/verify.js');
          const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
          const bytes = (h) => Uint8Array.from(h.match(/../g), (p) => parseInt(p, 16));
          const key = await m.parseVerifierKey(vkey);
          const leaf = await m.leafHash(new TextEncoder().encode(text));
          const root = await m.rootFromInclusion(
            BigInt(index), BigInt(size), leaf, proof.map(bytes));
          return { leaf: hex(leaf), root: hex(root), name: key.name, origin: key.origin };
        }""",
        {
            "text": vector.entry_text,
            "vkey": vector.vkey,
            "index": 4,
            "size": 6,
            "proof": vector.receipt["inclusion_proof"],
        },
    )
    checkpoint = CheckpointVerifier.from_key_string(vector.vkey).verify(
        vector.receipt["checkpoint"]
    )
    assert found == {
        "leaf": vector.receipt["leaf_hash"],
        "root": checkpoint.root.hex(),
        "name": AUDIT_KEY_NAME,
        "origin": own_log.signer.origin,
    }


# --- tampered and malformed receipts ----------------------------------------------------------


def _lines(note: str) -> list[str]:
    return note.split("\n")


def _replace_line(text: str, number: int, line: str | bytes) -> str:
    lines = text.split("\n")
    lines[number] = line if isinstance(line, str) else line.decode()
    return "\n".join(lines)


def _with_line(vector: Vector, number: int, text: str) -> Vector:
    return vector.with_receipt(checkpoint=_replace_line(vector.receipt["checkpoint"], number, text))


def _flip_signature_byte(vector: Vector) -> Vector:
    lines = _lines(vector.receipt["checkpoint"])
    dash, name, encoded = lines[5].split(" ")
    blob = bytearray(base64.b64decode(encoded))
    blob[4 + 10] ^= 0x01  # in the signature, after the 4-byte key id
    lines[5] = f"{dash} {name} {base64.b64encode(bytes(blob)).decode()}"
    return vector.with_receipt(checkpoint="\n".join(lines))


def _body(vector: Vector) -> str:
    return vector.receipt["checkpoint"].partition("\n\n")[0] + "\n"


def _resigned(own: OwnLog, vector: Vector, body: str) -> Vector:
    """The body re-signed with the log's own key: only the body's content is wrong."""
    return vector.with_receipt(checkpoint=sign_body(AUDIT_KEY_NAME, own.key, body))


def _other_key(own: OwnLog, vector: Vector) -> Vector:
    stranger = CheckpointSigner(AUDIT_KEY_NAME, Ed25519PrivateKey.generate())
    return vector.with_receipt(checkpoint=sign_body(AUDIT_KEY_NAME, stranger._key, _body(vector)))


def _wrong_key_id(vector: Vector) -> Vector:
    name, key_id, encoded = vector.vkey.split("+", 2)
    wrong = f"{int(key_id, 16) ^ 1:08x}"
    return replace(vector, verifier_key=f"{name}+{wrong}+{encoded}")


def _flip_proof_step(vector: Vector) -> Vector:
    proof = list(vector.receipt["inclusion_proof"])
    proof[1] = ("0" if proof[1][0] != "0" else "1") + proof[1][1:]
    return vector.with_receipt(inclusion_proof=proof)


def _change_entry(vector: Vector) -> Vector:
    text = vector.entry_text.replace("Zoë", "Zoe")
    assert text != vector.entry_text
    return replace(vector, entry_text=text)


def _reserialised(vector: Vector) -> Vector:
    """The same entry as JSON with ASCII escapes: equal as data, not as bytes."""
    text = json.dumps(json.loads(vector.entry_text), sort_keys=True, separators=(",", ":"))
    return replace(vector, entry_text=text)


Mutation = Callable[[OwnLog, Vector], Vector]
# (case, mutation of the receipt for entry 0 ("Zoë 東京") in a tree of 7, expected reason)
TAMPERED: list[tuple[str, Mutation, str]] = [
    ("size-changed", lambda o, v: _with_line(v, 1, "6"), "signature does not verify"),
    (
        "root-changed",
        lambda o, v: _with_line(v, 2, base64.b64encode(bytes(32)).decode()),
        "signature does not verify",
    ),
    ("signature-byte-flipped", lambda o, v: _flip_signature_byte(v), "signature does not verify"),
    (
        "time-line-changed",
        lambda o, v: _with_line(v, 3, "time 2020-01-01T00:00:00.000000Z"),
        "signature does not verify",
    ),
    ("signed-by-another-key", _other_key, "carries no signature by this key"),
    ("no-signature-line", lambda o, v: v.with_receipt(checkpoint=_body(v)), "not a signed note"),
    (
        "another-logs-origin",
        lambda o, v: _resigned(
            o, v, _body(v).replace(o.signer.origin, "likeness-guard/" + "0" * 16)
        ),
        "names another log",
    ),
    (
        "size-with-leading-zero",
        lambda o, v: _resigned(o, v, _body(v).replace("\n7\n", "\n07\n")),
        "tree size is not a decimal",
    ),
    (
        "root-of-31-bytes",
        lambda o, v: _resigned(o, v, _replace_line(_body(v), 2, base64.b64encode(bytes(31)))),
        "root is not a base64",
    ),
    (
        "no-time-line",
        lambda o, v: _resigned(o, v, _body(v).replace("time ", "tyme ")),
        "no time line",
    ),
    ("verifier-key-wrong-key-id", lambda o, v: _wrong_key_id(v), "key id does not match"),
    (
        "verifier-key-of-another-log",
        lambda o, v: replace(
            v,
            verifier_key=CheckpointSigner(
                AUDIT_KEY_NAME, Ed25519PrivateKey.generate()
            ).verifier_key,
        ),
        "carries no signature by this key",
    ),
    ("entry-one-character-changed", lambda o, v: _change_entry(v), "do not hash to"),
    ("entry-reserialised-as-ascii", lambda o, v: _reserialised(v), "do not hash to"),
    ("proof-step-flipped", lambda o, v: _flip_proof_step(v), "does not lead to the checkpoint"),
    (
        "proof-too-short",
        lambda o, v: v.with_receipt(inclusion_proof=v.receipt["inclusion_proof"][:-1]),
        "too short",
    ),
    (
        "proof-too-long",
        lambda o, v: v.with_receipt(inclusion_proof=[*v.receipt["inclusion_proof"], "00" * 32]),
        "too long",
    ),
    (
        "proof-step-of-31-bytes",
        lambda o, v: v.with_receipt(inclusion_proof=["00" * 31, *v.receipt["inclusion_proof"][1:]]),
        "not 32 bytes",
    ),
    ("leaf-index-out-of-range", lambda o, v: v.with_receipt(leaf_index=7), "outside"),
    ("leaf-index-negative", lambda o, v: v.with_receipt(leaf_index=-1), "outside"),
    (
        "leaf-index-of-another-leaf",
        lambda o, v: v.with_receipt(leaf_index=2),
        "does not lead to the checkpoint",
    ),
    ("leaf-hash-not-hex", lambda o, v: v.with_receipt(leaf_hash="zz" * 32), "not hexadecimal"),
    ("leaf-hash-odd-length", lambda o, v: v.with_receipt(leaf_hash="abc"), "not hexadecimal"),
    ("leaf-hash-too-short", lambda o, v: v.with_receipt(leaf_hash="ab" * 31), "do not hash to"),
    (
        "proof-step-not-hex",
        lambda o, v: v.with_receipt(inclusion_proof=["xyz", *v.receipt["inclusion_proof"]]),
        "not a list of hexadecimal",
    ),
    ("verifier-key-empty", lambda o, v: replace(v, verifier_key=""), "not a C2SP"),
    ("verifier-key-bad-base64", lambda o, v: replace(v, verifier_key="a+b+!!!"), "not a C2SP"),
    (
        "verifier-key-not-ed25519",
        lambda o, v: replace(v, verifier_key=v.vkey.split("+", 2)[0] + "+00000000+" + "A" * 44),
        "not an Ed25519 key",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "reason"), [c[1:] for c in TAMPERED], ids=[c[0] for c in TAMPERED]
)
def test_a_tampered_receipt_fails_with_its_reason_and_python_agrees(
    verifier_page: Page, own_log: OwnLog, mutate: Mutation, reason: str
) -> None:
    vector = mutate(own_log, own_log.vector(0, 7))
    result = run_js(verifier_page, vector.args())
    assert result == {"ok": False, "reason": result["reason"]}
    assert reason in result["reason"], result["reason"]
    assert vector.python_ok() is False


def test_every_tampering_case_has_its_own_reason() -> None:
    """The reasons the cases expect do not overlap: an auditor can tell the failures apart."""
    expected = {reason for _, _, reason in TAMPERED}
    for reason in expected:
        others = [r for r in expected if r != reason]
        assert not any(reason in other for other in others)


GARBAGE: list[tuple[str, Any]] = [
    ("nothing", None),
    ("empty-object", {}),
    ("a-string", "receipt"),
    ("receipt-null", {"entryText": "{}", "receipt": None, "verifierKey": "x"}),
    ("receipt-array", {"entryText": "{}", "receipt": [], "verifierKey": "x"}),
    ("entry-not-text", {"entryText": 5, "receipt": {}, "verifierKey": "x"}),
    ("checkpoint-number", {"entryText": "{}", "receipt": {"checkpoint": 42}, "verifierKey": "x"}),
]


@pytest.mark.parametrize("args", [g[1] for g in GARBAGE], ids=[g[0] for g in GARBAGE])
def test_garbage_is_refused_not_thrown(verifier_page: Page, args: Any) -> None:
    result = verifier_page.evaluate(
        f"""async (args) => {{
          const m = await import('{MODULE}');
          return args === null ? m.verifyReceipt() : m.verifyReceipt(args);
        }}""",
        args,
    )
    assert result["ok"] is False and isinstance(result["reason"], str) and result["reason"]


@pytest.mark.parametrize(
    "field",
    ["leaf_index", "leaf_hash", "checkpoint", "inclusion_proof"],
)
@pytest.mark.parametrize(
    "value", [None, "12", 1.5, [], {}], ids=["null", "str", "float", "list", "obj"]
)
def test_a_receipt_field_of_the_wrong_type_is_refused(
    verifier_page: Page, own_log: OwnLog, field: str, value: Any
) -> None:
    vector = own_log.vector(2, 3).with_receipt(**{field: value})
    result = run_js(verifier_page, vector.args())
    assert result["ok"] is False and result["reason"], result
    assert "could not be checked" not in result["reason"]  # a reason, not a caught bug


def test_the_module_is_served_as_javascript(verifier_page: Page) -> None:
    response = verifier_page.request.get(MODULE)
    assert response.status == 200
    assert "javascript" in response.headers["content-type"]
