"""Fixtures of the dashboard tests: the service tests' small org on SQLite, signed in through the login form."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.serving.conftest import StubSource, make_settings, seed


class Web:
    def __init__(self, app, client: TestClient, tokens: dict[str, str]):
        self.app, self.client, self.tokens = app, client, tokens

    def login(self, user: str) -> TestClient:
        """A fresh client signed in as `user` through the form (the session cookie)."""
        c = TestClient(self.app, base_url="http://testserver")
        r = c.post("/login", data={"token": self.tokens[user], "next": "/"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        return c


@pytest.fixture
def web(tmp_path):
    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'web.db'}"), model_source=StubSource("1"))
    with TestClient(app) as client:
        yield Web(app, client, seed(app))
