"""How the console's and the person's pages travel: the session cookie is ``Secure`` unless a
development server is asked over plain HTTP by a loopback name (a TLS-terminating proxy the
guard does not trust looks like plain HTTP, and the cookie must still never travel in clear);
sign-in attempts are limited per address in a bucket of their own, so draining the person's
pages' bucket does not lock auditors out. (That ``guard serve`` believes forwarded headers
only from GUARD_TRUSTED_PROXIES: tests/integration/test_cli.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from guard.api import create_app
from guard.api.keys import ApiKeyStore, Role
from guard.pipeline import Guard
from guard.web.pages import RedeemLimit
from tests.support.guards import GuardFactory


@pytest.fixture
def guard(make_guard: GuardFactory) -> Guard:
    return make_guard()


def _client(guard: Guard, base_url: str) -> Iterator[TestClient]:
    app = create_app(guard=guard)
    app.state.web_redeem_limit = RedeemLimit(rate_per_second=0.001, burst=2, name="transport")
    with TestClient(app, base_url=base_url) as client:
        yield client


def _sign_in(client: TestClient, token: str) -> Any:
    page = client.get("/console/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return client.post(
        "/console/sign-in", data={"key": token, "csrf": csrf.group(1)}, follow_redirects=False
    )


def _set_cookie(answer: Any, name: str) -> str:
    cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    found = [c for c in cookies if c.startswith(f"{name}=")]
    assert len(found) == 1, cookies
    return str(found[0])


@pytest.mark.parametrize(
    ("base_url", "secure"),
    [
        ("http://console.example.com", True),  # TLS ended by a proxy the guard does not trust
        ("https://console.example.com", True),
        ("http://10.0.0.5:8080", True),
        ("http://127.0.0.1:8080", False),  # a development server
        ("http://localhost:8080", False),
        ("http://[::1]:8080", False),
    ],
)
def test_cookies_are_secure_except_on_a_loopback_name(
    guard: Guard, base_url: str, secure: bool
) -> None:
    token = ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token
    for client in _client(guard, base_url):
        page = client.get("/console/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        csrf_cookie = _set_cookie(page, "lg_csrf")
        # Sent by hand: a client's jar (like a browser) returns Secure cookies over HTTPS only.
        client.cookies.clear()
        answer = client.post(
            "/console/sign-in",
            data={"key": token, "csrf": csrf.group(1)},
            headers={"cookie": csrf_cookie.split(";", 1)[0]},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        for cookie in (csrf_cookie, _set_cookie(answer, "lg_console")):
            attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
            assert ("secure" in attributes) is secure, cookie
            assert "httponly" in attributes and "samesite=strict" in attributes


def test_sign_in_has_its_own_rate_limit_bucket(guard: Guard) -> None:
    token = ApiKeyStore(guard.db).create(tenant="acme", role=Role.AUDITOR).token
    for client in _client(guard, "https://testserver"):
        # Someone at this address uses up the person's pages' attempts...
        answers = [client.get(f"/me/link/lgm_{n}bogus").status_code for n in range(3)]
        assert answers[-1] == 429, answers
        # ...and an auditor at the same address still signs in.
        assert _sign_in(client, token).status_code == 303
        # Sign-in's own bucket still holds: wrong keys run it out.
        client.cookies.clear()
        refused = [_sign_in(client, "lg_0123456789abcdef." + "A" * 43) for _ in range(2)]
        assert [a.status_code for a in refused] == [401, 429]
