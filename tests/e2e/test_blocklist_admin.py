"""Blocklist administration over HTTP: the operator adds, removes and rebuilds; the next
decision uses the new generation (and audits it in force); no tenant key, not even a tenant
admin's, may read or change it."""

from __future__ import annotations

import json
from pathlib import Path

from guard.api import ApiKeyStore, Role
from guard.samples import sample_bytes
from tests.support.live import LiveFactory, params

HANKS = {"image": ("hanks.png", sample_bytes("tom_hanks"), "image/png")}


def test_add_check_remove_rebuild(live: LiveFactory, tmp_path: Path) -> None:
    source = tmp_path / "figures"
    (source / "tom-hanks").mkdir(parents=True)
    (source / "tom-hanks" / "1.png").write_bytes(sample_bytes("tom_hanks"))
    (source / "tom-hanks" / "figure.json").write_text(json.dumps({"name": "Tom Hanks"}))
    service = live(blocklist_source_dir=source)
    figure = {"figure_id": "tom-hanks", "name": "Tom Hanks", "aliases": ["Thomas Hanks"]}
    files = {"images": HANKS["image"]}
    with (
        service.client(role=Role.OPERATOR) as operator,
        service.client(role=Role.ADMIN) as admin,
        service.client() as api,
    ):
        for tenant_key in (api, admin):
            refused = tenant_key.post(
                "/v1/blocklist/figures", data={"params": json.dumps(figure)}, files=files
            )
            assert refused.status_code == 403
            assert tenant_key.get("/v1/blocklist").status_code == 403
        assert operator.get("/v1/blocklist").json()["figures"] == []
        added = operator.post(
            "/v1/blocklist/figures", data={"params": json.dumps(figure)}, files=files
        )
        assert added.status_code == 201, added.text
        assert added.json() == {
            "id": "tom-hanks",
            "name": "Tom Hanks",
            "aliases": ["Thomas Hanks"],
            "references": 1,
        }
        denied = api.post("/v1/checks", data=params(operation="relight"), files=HANKS)
        assert denied.status_code == 403 and denied.json()["code"] == "public_figure"
        named = api.post(
            "/v1/checks", data=params(operation="generate", prompt="Thomas Hanks on the moon")
        )
        assert named.json()["code"] == "prompt_names_public_figure"

        assert admin.delete("/v1/blocklist/figures/tom-hanks").status_code == 403
        assert operator.delete("/v1/blocklist/figures/tom-hanks").status_code == 200
        assert operator.delete("/v1/blocklist/figures/tom-hanks").status_code == 404
        assert (
            api.post("/v1/checks", data=params(operation="relight"), files=HANKS).json()["code"]
            == "no_consent"
        )

        assert admin.post("/v1/blocklist/rebuild").status_code == 403
        rebuilt = operator.post("/v1/blocklist/rebuild")
        assert rebuilt.status_code == 200, rebuilt.text
        assert rebuilt.json()["figures"] == 1
        listed = operator.get("/v1/blocklist").json()
        assert listed["generation"] == rebuilt.json()["generation"]
        assert [f["id"] for f in listed["figures"]] == ["tom-hanks"]
        assert (
            api.post("/v1/checks", data=params(operation="relight"), files=HANKS).json()["code"]
            == "public_figure"
        )
        in_force = [
            e["entry"]["generation"]
            for e in admin.get("/v1/audit/entries?limit=1000").json()["entries"]
            if e["entry"]["kind"] == "blocklist_in_force"
        ]
        assert in_force[-1] == rebuilt.json()["generation"]
    # Every change is its own audit entry, with the operator key that made it.
    changes = [
        entry
        for _, entry in service.guard.audit.entries(limit=10_000)
        if entry["kind"] == "blocklist_changed"
    ]
    operator_key = {f"key:{k.id}" for k in ApiKeyStore(service.guard.db).list_keys("*")}
    assert [(c["figures_added"], c["figures_removed"]) for c in changes] == [
        (["tom-hanks"], []),
        ([], ["tom-hanks"]),
        (["tom-hanks"], []),
    ]
    assert {c["actor"] for c in changes} == operator_key


def test_rebuild_without_a_source_folder_is_a_conflict(live: LiveFactory) -> None:
    service = live()
    with service.client(role=Role.OPERATOR) as operator:
        response = operator.post("/v1/blocklist/rebuild")
    assert response.status_code == 409
    assert "GUARD_BLOCKLIST_SOURCE_DIR" in response.json()["detail"]


def test_etags_and_if_match(live: LiveFactory, tmp_path: Path) -> None:
    """Each answer tags the generation; a change sent with a stale If-Match is refused (409)
    and saves nothing; a malformed one is a 400."""
    source = tmp_path / "figures"
    (source / "tom-hanks").mkdir(parents=True)
    (source / "tom-hanks" / "1.png").write_bytes(sample_bytes("tom_hanks"))
    service = live(blocklist_source_dir=source)
    figure = {"figure_id": "tom-hanks", "name": "Tom Hanks"}
    with service.client(role=Role.OPERATOR) as operator:
        listed = operator.get("/v1/blocklist")
        tag = listed.headers["ETag"]
        assert tag == f'"{listed.json()["generation"]}"'
        added = operator.post(
            "/v1/blocklist/figures",
            headers={"If-Match": tag},
            data={"params": json.dumps(figure)},
            files={"images": HANKS["image"]},
        )
        assert added.status_code == 201, added.text
        assert added.headers["ETag"] == f'"{int(tag[1:-1]) + 1}"'
        stale = operator.delete("/v1/blocklist/figures/tom-hanks", headers={"If-Match": tag})
        assert stale.status_code == 409
        assert "this change was based on" in stale.json()["detail"]
        assert operator.post("/v1/blocklist/rebuild", headers={"If-Match": tag}).status_code == 409
        for malformed in ("12", 'W/"3"', '"x"', '"1", "2"'):
            refused = operator.delete(
                "/v1/blocklist/figures/tom-hanks", headers={"If-Match": malformed}
            )
            assert refused.status_code == 400, (malformed, refused.text)
        assert [f["id"] for f in operator.get("/v1/blocklist").json()["figures"]] == ["tom-hanks"]
        removed = operator.delete(
            "/v1/blocklist/figures/tom-hanks", headers={"If-Match": added.headers["ETag"]}
        )
        assert removed.status_code == 200
        assert removed.headers["ETag"] == f'"{int(tag[1:-1]) + 2}"'
        rebuilt = operator.post(
            "/v1/blocklist/rebuild", headers={"If-Match": removed.headers["ETag"]}
        )
        assert (
            rebuilt.status_code == 200
            and rebuilt.headers["ETag"] == f'"{rebuilt.json()["generation"]}"'
        )
