"""helios serve: the overrides API (issue 16 controls) against a real server on 127.0.0.1:
listed, added and cleared with the token, refused without it or cross-origin, bad form input
is a 400 naming the field, and an override made here is the executor's overrides file."""

from __future__ import annotations

import json
from datetime import timedelta

from test_serve import _now, demo_folder, served  # noqa: F401 - the fixtures

from executor import overrides as ov


def test_overrides_add_list_clear_reach_the_executors_file(served):  # noqa: F811
    assert served.get_json("/api/overrides") == {"overrides": []}
    assert served.get_json("/api/status")["overrides"] == []
    status, doc = served.post("/api/overrides", {"kind": "hold", "from": "now", "for": "2h",
                                                 "reason": "guests"})
    assert status == 200, doc
    assert doc["message"].startswith("override #1 added: hold")
    (entry,) = doc["overrides"]
    assert entry["kind"] == "hold" and entry["reason"] == "guests" and entry["in_force"]
    assert entry["created_by"].endswith("(web)")
    # the executor's file: what the executor obeys at its next tick
    found, problem = ov.read(served.home.overrides_path)
    assert problem is None and [o.kind for o in found] == ["hold"]
    assert timedelta(minutes=119) < found[0].end - _now() <= timedelta(hours=2)
    assert served.get_json("/api/status")["overrides"][0]["id"] == 1
    # curl-style form input too
    status, _, body = served.request("/api/overrides", "POST",
                                     b"kind=charge&soc_pct=80&for=1h&kw=2.5", {
                                         "Authorization": f"Bearer {served.token}",
                                         "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    assert [o["kind"] for o in served.get_json("/api/overrides")["overrides"]] == ["hold",
                                                                                 "charge"]
    status, _, body = served.request("/api/overrides/1", "DELETE",
                                     headers={"Authorization": f"Bearer {served.token}"})
    assert status == 200, body
    assert json.loads(body)["message"] == "override #1 cleared"
    found, _ = ov.read(served.home.overrides_path)
    assert [o.kind for o in found] == ["charge"]
    status, _, body = served.request("/api/overrides/1", "DELETE",
                                     headers={"Authorization": f"Bearer {served.token}"})
    assert status == 404 and b"no override #1" in body


def test_overrides_need_the_token_and_the_same_origin(served):  # noqa: F811
    status, doc = served.post("/api/overrides", {"kind": "hold", "for": "1h"}, token=None)
    assert status == 401
    status, doc = served.post("/api/overrides", {"kind": "hold", "for": "1h"}, token="nope")
    assert status == 403
    status, doc = served.post("/api/overrides", {"kind": "hold", "for": "1h"},
                              headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in doc["error"]
    status, _, _ = served.request("/api/overrides/1", "DELETE")
    assert status == 401
    status, _, _ = served.request("/api/overrides/1", "DELETE", headers={
        "Authorization": f"Bearer {served.token}", "Origin": "http://evil.example"})
    assert status == 403
    assert ov.read(served.home.overrides_path) == ([], None)


def test_bad_override_input_is_a_400_naming_the_field(served):  # noqa: F811
    for doc, message in (
            ({"kind": "dance", "for": "1h"}, "kind: expected one of"),
            ({"for": "1h"}, "kind: required"),
            ({"kind": "hold", "for": "soon"}, "for: expected a duration"),
            ({"kind": "hold", "from": "teatime", "for": "1h"}, "from: expected 'now'"),
            ({"kind": "charge", "for": "1h", "soc_pct": "lots"}, "soc_pct: expected a number"),
            ({"kind": "charge", "for": "1h", "soc_pct": 140}, "soc_pct: expected 0..100"),
            ({"kind": "load", "name": "pool", "for": "1h"}, "name: no deferrable load"),
            ({"kind": "hold", "for": "1h", "colour": "red"}, "colour: unknown field"),
            ({"kind": "hold"}, "to: the override needs an end")):
        status, answer = served.post("/api/overrides", doc)
        assert status == 400, (doc, answer)
        assert message in answer["error"], (doc, answer)
    status, _, body = served.request("/api/overrides/abc", "DELETE",
                                     headers={"Authorization": f"Bearer {served.token}"})
    assert status == 400 and b"id: expected a whole number" in body
