"""Pure parts of `scaleout replay`: HAR and .http readers, masked comparison, the judge on simulated replicas."""

from __future__ import annotations

import base64
import itertools
import json
import uuid

import pytest

from scaleout.replay.flow import Answer, FlowError
from scaleout.replay.har import read_har
from scaleout.replay.httpfile import TemplateError, read_http, resolve
from scaleout.replay.judge import judge


def _har(tmp_path, entries):
    p = tmp_path / "flow.har"
    p.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    return p


def _entry(url, method="GET", headers=(), post=None):
    req = {"url": url, "method": method, "headers": [{"name": k, "value": v} for k, v in headers]}
    if post:
        req["postData"] = post
    return {"request": req, "response": {"status": 200}}


def test_har_drops_pseudo_and_owned_headers_and_other_origins(tmp_path):
    p = _har(tmp_path, [
        _entry("http://127.0.0.1:8080/login", "POST",
               [(":authority", "127.0.0.1:8080"), ("Content-Length", "9"), ("Cookie", "sid=stale"),
                ("Accept-Encoding", "gzip"), ("X-Kept", "1")],
               {"mimeType": "application/x-www-form-urlencoded", "text": "user=ann"}),
        _entry("https://cdn.example.com/app.js"),
        _entry("http://127.0.0.1:8080/upload?x=1", "PUT", [],
               {"mimeType": "application/octet-stream", "text": base64.b64encode(b"\x00\x01").decode(),
                "encoding": "base64"}),
    ])
    flow = read_har(p)
    assert flow.skipped_other_origins == 1
    assert [s.index for s in flow.steps] == [1, 2]
    first, second = flow.steps
    assert first.headers == (("X-Kept", "1"), ("Content-Type", "application/x-www-form-urlencoded"))
    assert first.body == b"user=ann"
    assert second.target == "/upload?x=1" and second.body == b"\x00\x01"


@pytest.mark.parametrize("doc,needle", [
    ("{not json", "flow.har:1"),
    (json.dumps({"log": {}}), "no log.entries"),
    (json.dumps({"log": {"entries": [{"request": {"url": "http://a/", "method": "TRACE"}}]}}), "entry 1"),
    (json.dumps({"log": {"entries": [_entry("http://a/", "POST", [], {"text": "%%", "encoding": "base64"})]}}),
     "entry 1: request.postData.text is not valid base64"),
])
def test_har_errors_name_file_and_entry(tmp_path, doc, needle):
    p = tmp_path / "flow.har"
    p.write_text(doc)
    with pytest.raises(FlowError) as err:
        read_har(p)
    assert needle in str(err.value)


HTTP = """\
@host = http://localhost:3000
@user = ann

# @name login
POST {{host}}/login
Content-Type: application/json
Cookie: stale=1

{"user": "{{user}}"}

###
GET {{host}}/items/{{login.response.body.$.items[0].id}}
X-Back: {{login.response.headers.Location}}
"""


def test_http_file_variables_and_named_requests(tmp_path):
    p = tmp_path / "requests.http"
    p.write_text(HTTP)
    flow = read_http(p)
    login, item = flow.steps
    assert (login.method, login.name, login.where) == ("POST", "login", f"{p}:5")
    assert login.headers == (("Content-Type", "application/json"),)
    variables = dict(flow.variables)
    assert resolve(login.body.decode(), variables, {}) == '{"user": "ann"}'
    ans = Answer(200, [("Location", "/home")], b'{"items": [{"id": 7}]}')
    assert item.target == "/items/{{login.response.body.$.items[0].id}}"  # as reports show it
    assert resolve(item.target, variables, {"login": ans}) == "/items/7"
    assert resolve(item.headers[0][1], variables, {"login": ans}) == "/home"
    with pytest.raises(TemplateError):
        resolve(item.target, variables, {"login": Answer(200, [], b"{}")})


@pytest.mark.parametrize("text,needle", [
    ("GET /a\n###\nGET {{nope}}\n", "requests.http:3: {{nope}} is not defined"),
    ("GET /a\n###\nGET /{{x.response.body.$.id}}\n", "requests.http:3: {{x.response.body.$.id}} names no"),
    ("FETCH /a\n", "requests.http:1: not a request line"),
    ("GET /a\nbad header\n", "requests.http:2: not a header line"),
    ("# @name a\nGET /a\n###\n# @name a\nGET /b\n", "requests.http:4: request name 'a' is used twice"),
])
def test_http_errors_name_file_and_line(tmp_path, text, needle):
    p = tmp_path / "requests.http"
    p.write_text(text)
    with pytest.raises(FlowError) as err:
        read_http(p)
    assert needle in str(err.value)


# --- the judge against simulated replicas -------------------------------------------------------------


class Replica:
    """A tiny app with one kind of state bug (or none), answering like a real one would."""

    def __init__(self, name, bug, shared):
        self.name, self.bug, self.shared = name, bug, shared
        self.sessions, self.files, self.cache = set(), set(), {}
        self.shared_value = _SHARED_VALUE

    def answer(self, step, jar):
        noisy = {"time": f"2026-12-03T08:{next(_clock) % 60:02d}:00Z", "rid": str(uuid.uuid4()), "host": self.name}
        if step == "login":
            sid = uuid.uuid4().hex
            if self.bug == "session":
                self.sessions.add(sid)
            else:
                self.shared.add(sid)
            jar["sid"] = sid
            return Answer(200, [("Set-Cookie", f"sid={sid}"), ("Content-Type", "application/json")],
                          json.dumps(noisy).encode())
        if step == "me":
            known = self.sessions if self.bug == "session" else self.shared
            if jar.get("sid") not in known:
                return Answer(401, [("Content-Type", "application/json")], b'{"error": "login"}')
            return Answer(200, [("Content-Type", "application/json")], json.dumps({**noisy, "user": "ann"}).encode())
        if step == "upload":
            jar["file"] = uuid.uuid4().hex
            (self.files if self.bug == "disk" else self.shared).add(jar["file"])
            return Answer(201, [("Content-Type", "application/json")], json.dumps(noisy).encode())
        if step == "write":
            jar["v"] = uuid.uuid4().hex
            self.shared.add(("v", jar["v"]))
            self.cache["v"] = jar["v"]
            self.shared_value[0] = jar["v"]
            return Answer(200, [("Content-Type", "application/json")], json.dumps({"value": jar["v"]}).encode())
        if step == "read":
            if self.bug != "cache" or "v" not in self.cache:
                self.cache["v"] = self.shared_value[0]
            return Answer(200, [("Content-Type", "application/json")],
                          json.dumps({**noisy, "value": self.cache["v"]}).encode())
        if step == "get":
            ok = jar.get("file") in (self.files if self.bug == "disk" else self.shared)
            return Answer(200 if ok else 404, [("Content-Type", "text/plain")], b"hello" if ok else b"nope")
        raise AssertionError(step)


_clock = itertools.count()
_SHARED_VALUE = [""]


def _send_for(bug, steps):
    shared = set()
    reps = {"a": Replica("web-1", bug, shared), "b": Replica("web-2", bug, shared)}

    def send(plan, label):
        jar = {}
        return [reps[r].answer(steps[i], jar) for i, r in enumerate(plan)]

    return send


def _steps(names):
    from scaleout.replay.flow import Step

    return [Step(i + 1, "POST" if n in ("login", "upload", "write") else "GET", f"/{n}") for i, n in enumerate(names)]


@pytest.mark.parametrize("bug,names,step,depends_on,kind", [
    ("session", ["login", "me"], 2, 1, "session"),
    ("session", ["login", "me", "me"], 2, 1, "session"),
    ("disk", ["login", "upload", "get"], 3, 2, "local-disk"),
    ("cache", ["read", "write", "read"], 3, 2, "cache"),
])
def test_judge_names_the_step_and_what_it_depends_on(bug, names, step, depends_on, kind):
    verdict = judge(_steps(names), ["a", "b"], _send_for(bug, names))
    assert [(f.step, f.depends_on, f.kind) for f in verdict.findings] == [(step, depends_on, kind)]


@pytest.mark.parametrize("names", [["login", "me"], ["login", "upload", "get", "me"], ["read", "write", "read"]])
def test_stateless_controls_with_noise_and_hostnames_pass(names):
    verdict = judge(_steps(names), ["a", "b"], _send_for(None, names))
    assert verdict.findings == []
    assert verdict.passed


def test_flow_failing_everywhere_is_not_a_finding():
    names = ["me", "me"]
    verdict = judge(_steps(names), ["a", "b"], _send_for(None, names))
    assert verdict.findings == [] and verdict.failing_everywhere == [1, 2]


@pytest.mark.parametrize("bug,names,step,depends_on,kind", [
    ("session", ["login", "me"], 2, 1, "session"),
    ("disk", ["login", "upload", "get"], 3, 2, "local-disk"),
])
def test_every_replica_is_compared_not_only_the_first_two(bug, names, step, depends_on, kind):
    """Three replicas, the bug only in the third (one that drifted): it is found, and named."""
    shared = set()
    reps = {"a": Replica("web-1", None, shared), "b": Replica("web-2", None, shared),
            "c": Replica("web-3", bug, shared)}

    def send(plan, label):
        jar = {}
        return [reps[r].answer(names[i], jar) for i, r in enumerate(plan)]

    verdict = judge(_steps(names), ["a", "b", "c"], send)
    assert [(f.step, f.depends_on, f.kind) for f in verdict.findings] == [(step, depends_on, kind)]
    assert "c" in verdict.findings[0].replicas
    assert {"pinned a", "pinned b", "pinned c"} <= set(verdict.runs)


def test_three_healthy_replicas_pass():
    names = ["login", "upload", "get", "me"]
    shared = set()
    reps = {r: Replica(f"web-{r}", None, shared) for r in "abc"}

    def send(plan, label):
        jar = {}
        return [reps[r].answer(names[i], jar) for i, r in enumerate(plan)]

    assert judge(_steps(names), list(reps), send).passed


@pytest.mark.parametrize("template", ["python", "node"])
def test_scaffold_ships_the_demo_flow_and_its_readme(tmp_path, template):
    from scaleout.scaffold import scaffold_files

    files = scaffold_files("demo", template)
    (tmp_path / "requests.http").write_bytes(files["requests.http"])
    flow = read_http(tmp_path / "requests.http")
    assert [(s.method, s.target) for s in flow.steps] == [
        ("POST", "/api/login"), ("GET", "/api/me"), ("POST", "/api/notes"),
        ("GET", "/api/notes/{{note.response.body.$.id}}"), ("GET", "/api/form"), ("POST", "/api/form"),
        ("GET", "/api/greeting"), ("POST", "/api/greeting"), ("GET", "/api/greeting")]
    readme = files["README.md"].decode()
    for needle in ("Save all as HAR", "scaleout replay requests.http", "SCALEOUT_DEMO_BUG"):
        assert needle in readme
    for bug in ("session", "disk", "cache", "secret", "csrf"):
        assert f"`{bug}`" in readme
    assert "# SCALEOUT_DEMO_BUG: session" in files["scaleout.yaml"].decode()
