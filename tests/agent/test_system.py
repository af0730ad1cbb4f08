"""Health, status, labels, the token policy and the cookie session, in process."""

from __future__ import annotations

from tests.agent_app import AUTH, TOKEN, api


def test_health_status_labels_and_token_policy(client):
    assert client.get("/healthz").json["ok"] is True
    assert client.get(api("healthz")).status_code == 200

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = client.get(api("status"), headers=headers)
        assert r.status_code == 401
        assert r.json["error"]["code"] == "unauthorized"

    status = client.get(api("status"), headers=AUTH).json
    assert status["camera"]["kind"] == "synthetic"
    assert status["storage"]["integrity"]["ok"] is True
    labels = client.get(api("labels"), headers=AUTH).json
    assert [label["name"] for label in labels["labels"]] == ["good", "porosity", "spatter", "gap", "undercut"]
    assert labels["hash"] == status["labels"]["hash"]

    r = client.get(api("no/such/thing"), headers=AUTH)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    r = client.put(api("status"), headers=AUTH)
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"


def test_cookie_session_from_url_token_and_session_endpoint(app):
    browser = app.test_client()
    assert browser.get("/?token=wrong").status_code == 401
    r = browser.get(f"/?token={TOKEN}&x=1")
    assert r.status_code == 303 and r.headers["Location"].endswith("/?x=1")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    assert browser.get(api("status")).status_code == 200

    other = app.test_client()
    assert other.get(api("labels")).status_code == 401
    assert other.post(api("session"), json={"token": "nope"}).status_code == 401
    assert other.post(api("session"), data="{", content_type="application/json").status_code == 400
    assert other.post(api("session"), json={"token": TOKEN}).status_code == 200
    assert other.get(api("labels")).status_code == 200
