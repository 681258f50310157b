"""Per-key rate limits (429 + Retry-After) and usage-monitoring flags, with Redis (shared by
workers) and with the in-process fallback."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from guard.api import Role
from guard.config import DEFAULT_POLICY_FILE
from tests.support.live import LiveFactory, image_part, params


@pytest.fixture(params=["in-process", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, object]:
    if request.param == "in-process":
        return {"redis_url": ""}
    return {"redis_url": request.getfixturevalue("redis_url")}


def test_rate_limit_answers_429_with_retry_after(
    live: LiveFactory, backend: dict[str, object]
) -> None:
    service = live(api_rate_per_second=0.2, api_rate_burst=3, **backend)
    with service.client() as api:
        statuses = [api.get("/v1/subjects").status_code for _ in range(3)]
        refused = api.get("/v1/subjects")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["type"] == "https://likeness-guard.dev/problems/rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 5
    # Another key has its own bucket.
    with service.client(role=Role.AUDITOR) as other:
        assert other.get("/v1/subjects").status_code == 200
    assert "guard_rate_limited_total 1.0" in httpx.get(f"{service.base_url}/metrics").text


def test_workers_share_a_bucket_through_redis(live: LiveFactory, redis_url: str) -> None:
    first = live(api_rate_per_second=0.2, api_rate_burst=2, redis_url=redis_url)
    second = live(api_rate_per_second=0.2, api_rate_burst=2, redis_url=redis_url)
    token = first.token("acme", Role.INTEGRATOR)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{first.base_url}/v1/subjects", headers=headers).status_code == 200
    assert httpx.get(f"{second.base_url}/v1/subjects", headers=headers).status_code == 200
    assert httpx.get(f"{first.base_url}/v1/subjects", headers=headers).status_code == 429
    assert httpx.get(f"{second.base_url}/v1/subjects", headers=headers).status_code == 429


def _policy(tmp_path: Path, **monitoring: object) -> Path:
    policy = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    policy["version"] = "test-monitoring"
    policy["monitoring"].update(monitoring)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def test_denials_flag_throttle_audit_and_clear(
    live: LiveFactory, backend: dict[str, object], tmp_path: Path
) -> None:
    service = live(
        policy_file=_policy(tmp_path, max_denials=2, throttle_factor=0.5),
        api_rate_burst=1000,
        **backend,
    )
    with service.client() as api:
        for _ in range(3):  # three photos of strangers: three denials
            denied = api.post(
                "/v1/checks", data=params(operation="relight"), files=image_part("t1")
            )
            assert denied.status_code == 403
        key_id = service.token("acme", Role.INTEGRATOR).split(".")[0].removeprefix("lg_")
    with service.client(role=Role.ADMIN) as admin:
        flags = admin.get("/v1/flags").json()
        assert [(f["key_id"], f["rule"]) for f in flags] == [(key_id, "denials")]
        assert "3 denied decisions" in flags[0]["detail"]
        entries = admin.get("/v1/audit/entries?limit=1000").json()["entries"]
        logged = [e["entry"] for e in entries if e["entry"]["kind"] == "usage_flag"]
        assert [(e["key_id"], e["rule"]) for e in logged] == [(key_id, "denials")]
        # Another tenant's admin sees nothing of it.
        with service.client("globex", Role.ADMIN) as other:
            assert other.get("/v1/flags").json() == []
            assert other.post(f"/v1/flags/{flags[0]['id']}/clear").status_code == 404
        cleared = admin.post(f"/v1/flags/{flags[0]['id']}/clear")
        assert cleared.status_code == 200 and cleared.json()["cleared_at"]
        assert admin.post(f"/v1/flags/{flags[0]['id']}/clear").status_code == 409
        assert admin.get("/v1/flags").json() == []
        assert len(admin.get("/v1/flags?include_cleared=true").json()) == 1
    assert (
        'guard_usage_flags_total{rule="denials"} 1.0'
        in httpx.get(f"{service.base_url}/metrics").text
    )


def test_flagged_key_is_throttled(live: LiveFactory, tmp_path: Path) -> None:
    service = live(
        policy_file=_policy(tmp_path, max_denials=1, throttle_factor=0.001),
        api_rate_per_second=50,
        api_rate_burst=3,
    )
    with service.client() as api:
        first = api.post("/v1/checks", data=params(operation="relight"), files=image_part("t1"))
        second = api.post("/v1/checks", data=params(operation="relight"), files=image_part("t1"))
        assert (first.status_code, second.status_code) == (403, 403)  # flagged on the second
        # At 50/s the bucket was full again; flagged, it refills at 50 * 0.001 = 0.05/s, so
        # the burst is the last of it.
        responses = [api.get("/v1/subjects") for _ in range(4)]
    assert [r.status_code for r in responses].count(429) >= 1
    throttled = next(r for r in responses if r.status_code == 429)
    assert int(throttled.headers["Retry-After"]) > 5
