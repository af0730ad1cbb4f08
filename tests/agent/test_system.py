"""Health, status, labels, the token policy and the cookie session, in process."""

from __future__ import annotations


def test_health_status_labels_and_token_policy(agent_app):
    agent = agent_app(token="s3cret-token")
    client = agent.client
    assert client.get("/healthz").json["ok"] is True
    assert client.get(agent.api("healthz")).status_code == 200

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        r = client.get(agent.api("status"), headers=headers)
        assert r.status_code == 401
        assert r.json["error"]["code"] == "unauthorized"

    status = client.get(agent.api("status"), headers=agent.auth).json
    assert status["camera"]["kind"] == "synthetic"
    assert status["storage"]["integrity"]["ok"] is True
    labels = client.get(agent.api("labels"), headers=agent.auth).json
    assert [label["name"] for label in labels["labels"]] == ["good", "porosity", "spatter", "gap", "undercut"]
    assert labels["hash"] == status["labels"]["hash"]

    r = client.get(agent.api("no/such/thing"), headers=agent.auth)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    r = client.put(agent.api("status"), headers=agent.auth)
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"


def test_cookie_session_from_url_token_and_session_endpoint(agent_app):
    agent = agent_app(token="cookie-token")
    browser = agent.app.test_client()
    assert browser.get("/?token=wrong").status_code == 401
    r = browser.get("/?token=cookie-token&x=1")
    assert r.status_code == 303 and r.headers["Location"].endswith("/?x=1")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "cookie-token" not in cookie
    assert browser.get(agent.api("status")).status_code == 200

    other = agent.app.test_client()
    assert other.get(agent.api("labels")).status_code == 401
    assert other.post(agent.api("session"), json={"token": "nope"}).status_code == 401
    assert other.post(agent.api("session"), data="{", content_type="application/json").status_code == 400
    assert other.post(agent.api("session"), json={"token": "cookie-token"}).status_code == 200
    assert other.get(agent.api("labels")).status_code == 200
