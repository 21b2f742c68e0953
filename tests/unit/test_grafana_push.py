"""`grafana.push` against a stub Grafana (http.server on 127.0.0.1) that records every request: the paths,
methods, headers and bodies must be Grafana's HTTP API, a second push must update rather than duplicate,
and failures (401, connection refused, a missing variable) must say what to do."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from grafana.build import build
from grafana.panels import DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID
from grafana.push import PushError, expand_env, push
from sgi import grafana_cmd

TOKEN = "glsa_test_token"
ENV = {
    "CMOG_CHAIR_EMAIL": "chair@example.org",
    "CMOG_WEBHOOK_URL": "https://hooks.example.org/cmog",
    "CLICKHOUSE_HOST": "clickhouse",
    "GRAFANA_READER_PASSWORD": "reader-secret",
}


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


Responder = Callable[[str, str], tuple[int, Any]]


@dataclass
class StubGrafana:
    url: str
    requests: list[Recorded] = field(default_factory=list)

    def calls(self, method: str | None = None, prefix: str = "") -> list[Recorded]:
        return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(prefix)]

    def api_calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]


def new_grafana(method: str, path: str) -> tuple[int, Any]:
    """A Grafana with nothing of ours in it yet."""
    if path == "/api/health":
        return 200, {"database": "ok", "version": "11.6.0"}
    if method == "GET" and path == "/api/folders":
        return 200, []
    if method == "GET" and (path.startswith("/api/folders/") or path.startswith("/api/v1/provisioning/alert-rules/")
                            or path.startswith("/api/datasources/uid/")):
        return 404, {"message": "not found"}
    if method == "GET" and path == "/api/v1/provisioning/contact-points":
        return 200, []
    if method == "POST" and path == "/api/folders":
        return 200, {"uid": FOLDER_UID, "title": FOLDER_TITLE}
    if method == "POST" and path == "/api/dashboards/db":
        return 200, {"status": "success"}
    return (201 if method == "POST" else 202), {"message": "ok"}


def existing_grafana(method: str, path: str) -> tuple[int, Any]:
    """A Grafana a first push already filled."""
    if method == "GET" and path == f"/api/folders/{FOLDER_UID}":
        return 200, {"uid": FOLDER_UID, "title": FOLDER_TITLE}
    if method == "GET" and path.startswith("/api/v1/provisioning/alert-rules/"):
        return 200, {"uid": path.rsplit("/", 1)[-1]}
    if method == "GET" and path.startswith("/api/datasources/uid/"):
        return 200, {"uid": DATASOURCE_UID}
    if method == "GET" and path == "/api/v1/provisioning/contact-points":
        return 200, [{"uid": "sgi-cmog-chair-email"}, {"uid": "sgi-cmog-chair-webhook"}]
    return new_grafana(method, path)


def unauthorized(method: str, path: str) -> tuple[int, Any]:
    if path == "/api/health":
        return 200, {"database": "ok"}
    return 401, {"message": "Unauthorized"}


@pytest.fixture
def serve() -> Iterator[Callable[[Responder], StubGrafana]]:
    servers: list[ThreadingHTTPServer] = []

    def start(responder: Responder) -> StubGrafana:
        stub = StubGrafana(url="")

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = unquote(parts.path)
                stub.requests.append(Recorded(self.command, path, parts.query,
                                              {k.lower(): v for k, v in self.headers.items()}, body))
                status, payload = responder(self.command, path)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stub.url = f"http://127.0.0.1:{server.server_address[1]}"
        return stub

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("provisioning")
    build(out, webhook=True)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_first_push_creates_everything_through_grafanas_api(serve: Any, built: Path) -> None:
    stub = serve(new_grafana)
    report = push(stub.url, TOKEN, built, env=ENV)

    assert report.folder_uid == FOLDER_UID
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in stub.requests)
    # folder: looked up by uid, then by title, then created with our uid
    assert stub.api_calls()[:3] == [("GET", f"/api/folders/{FOLDER_UID}"), ("GET", "/api/folders"),
                                    ("POST", "/api/folders")]
    assert stub.calls("POST", "/api/folders")[0].body == {"title": FOLDER_TITLE, "uid": FOLDER_UID}

    boards = stub.calls("POST", "/api/dashboards/db")
    assert sorted(r.body["dashboard"]["uid"] for r in boards) == sorted(
        json.loads(p.read_text())["uid"] for p in (built / "dashboards" / "safeguarding").glob("*.json"))
    for request in boards:
        assert request.body["folderUid"] == FOLDER_UID and request.body["overwrite"] is True
        assert request.body["dashboard"]["id"] is None

    contact = stub.calls("POST", "/api/v1/provisioning/contact-points")
    assert {r.body["type"]: r.body["settings"] for r in contact} == {
        "email": {"addresses": "chair@example.org", "singleEmail": True},
        "webhook": {"url": "https://hooks.example.org/cmog", "httpMethod": "POST"},
    }
    assert {r.body["name"] for r in contact} == {"CMOG chair"}

    (policy,) = stub.calls("PUT", "/api/v1/provisioning/policies")
    assert policy.body["receiver"] == "CMOG chair" and "orgId" not in policy.body
    assert policy.body["routes"][0]["object_matchers"] == [["grafana_folder", "=", FOLDER_TITLE]]

    file_rules = yaml.safe_load((built / "alerting" / "rules.yaml").read_text())
    uids = [rule["uid"] for group in file_rules["groups"] for rule in group["rules"]]
    created = stub.calls("POST", "/api/v1/provisioning/alert-rules")
    assert [r.body["uid"] for r in created] == uids
    for request in created:
        rule = request.body
        assert rule["folderUID"] == FOLDER_UID and rule["ruleGroup"] and rule["condition"] == "C"
        assert {q["refId"] for q in rule["data"]} == {"A", "C"}
        assert rule["annotations"]["__dashboardUid__"].startswith("sgi-")
        assert "X-Disable-Provenance".lower() not in request.headers
    groups = stub.calls("PUT", "/api/v1/provisioning/folder/")
    assert [r.path for r in groups] == [f"/api/v1/provisioning/folder/{FOLDER_UID}/rule-groups/{g['name']}"
                                        for g in file_rules["groups"]]
    assert [r.body["interval"] for r in groups] == [60, 300]
    assert not stub.calls(prefix="/api/datasources")


def test_second_push_updates_in_place(serve: Any, built: Path) -> None:
    stub = serve(existing_grafana)
    report = push(stub.url, TOKEN, built, env=ENV, datasource=True, editable=True)

    assert not stub.calls("POST", "/api/folders")
    assert not stub.calls("POST", "/api/v1/provisioning/alert-rules")
    assert not stub.calls("POST", "/api/v1/provisioning/contact-points")
    updated = stub.calls("PUT", "/api/v1/provisioning/alert-rules/")
    assert [r.path.rsplit("/", 1)[-1] for r in updated] == [r.body["uid"] for r in updated]
    assert len(stub.calls("PUT", "/api/v1/provisioning/contact-points/")) == 2
    provisioning = [r for r in stub.requests if r.method != "GET" and r.path.startswith("/api/v1/provisioning/")]
    assert provisioning and all(r.headers.get("x-disable-provenance") == "true" for r in provisioning)
    (datasource,) = stub.calls("PUT", f"/api/datasources/uid/{DATASOURCE_UID}")
    assert datasource.body["jsonData"]["host"] == "clickhouse"
    assert datasource.body["secureJsonData"] == {"password": "reader-secret"}
    assert ("updated", "alert rule") in {(action, kind) for kind, _, action in report.actions}


def test_401_says_the_token_was_rejected(serve: Any, built: Path) -> None:
    stub = serve(unauthorized)
    with pytest.raises(PushError, match=r"rejected the token \(401 Unauthorized\).*SGI_GRAFANA_TOKEN"):
        push(stub.url, "wrong", built, env=ENV)


def test_connection_refused_is_a_clear_error(built: Path) -> None:
    with pytest.raises(PushError, match="cannot connect to Grafana at .*is it running"):
        push(f"http://127.0.0.1:{free_port()}", TOKEN, built, env=ENV, timeout=5)


def test_missing_variables_fail_before_grafana_is_touched(serve: Any, built: Path) -> None:
    stub = serve(new_grafana)
    with pytest.raises(PushError, match="CMOG_WEBHOOK_URL"):
        push(stub.url, TOKEN, built, env={"CMOG_CHAIR_EMAIL": "chair@example.org"})
    assert stub.requests == []
    with pytest.raises(PushError, match="no Grafana token"):
        push(stub.url, "", built, env=ENV)


def test_missing_build_says_to_build(tmp_path: Path) -> None:
    with pytest.raises(PushError, match="sgi grafana build"):
        push("http://127.0.0.1:1", TOKEN, tmp_path, env=ENV)


def test_env_expansion_is_grafanas() -> None:
    missing: set[str] = set()
    assert expand_env({"a": "$A-${B}", "b": ["$$A", 3]}, {"A": "x", "B": "y"}, missing) == {"a": "x-y",
                                                                                            "b": ["$A", 3]}
    assert missing == set()
    expand_env("$NOPE", {}, missing)
    assert missing == {"NOPE"}


def test_cli_push_reports_failures_with_an_exit_code(serve: Any, built: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="sgi")
    grafana_cmd.add_parser(parser.add_subparsers())
    stub = serve(unauthorized)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SGI_GRAFANA_TOKEN", "from-env")
    args = parser.parse_args(["grafana", "push", "--url", stub.url, "--dir", str(built)])
    assert args.func(args) == 1
    assert "401" in capsys.readouterr().err
    assert stub.requests[-1].headers["authorization"] == "Bearer from-env"

    ok = serve(new_grafana)
    args = parser.parse_args(["grafana", "push", "--url", ok.url, "--dir", str(built), "--token", TOKEN])
    assert args.func(args) == 0
    assert "pushed to" in capsys.readouterr().out
