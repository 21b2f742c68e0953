"""`push(url, token, provisioning_dir)`: deploy the built provisioning files to a running Grafana through
its HTTP API (grafana-client), for a Grafana that does not mount grafana/provisioning.

In order: the "Safeguarding" folder, optionally the data source, the dashboards (overwrite, into the
folder), the contact point, the notification policy tree, then the alert rules (one by one through
/api/v1/provisioning/alert-rules, then each group's evaluation interval). Every call is an upsert, so a
second push changes nothing but versions.

Provenance: by default the alerting resources carry Grafana's "api" provenance, read-only in the UI like
file-provisioned ones, since their thresholds live in the rules config. `editable=True` sends
X-Disable-Provenance so administrators may edit them in the UI (the next push overwrites such edits).

Contact point and data source settings name environment variables ($CMOG_CHAIR_EMAIL, ...), which
Grafana expands when it reads files but not through the API: they are expanded here from `env`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import niquests
import yaml
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from grafana.alerting import rule_from_file
from grafana.build import DASHBOARD_DIR
from grafana.panels import FOLDER_TITLE, FOLDER_UID

DEFAULT_TIMEOUT = 30.0
PUSH_MESSAGE = "sgi grafana push"
_ENV_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

T = TypeVar("T")


class PushError(RuntimeError):
    """The push could not finish; the message says what to do."""


@dataclass
class PushReport:
    """What the push did, by resource kind: "created", "updated", "set"."""

    folder_uid: str = ""
    actions: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, action)

    def add(self, kind: str, name: str, action: str) -> None:
        self.actions.append((kind, name, action))

    def lines(self) -> list[str]:
        return [f"{action:8} {kind:14} {name}" for kind, name, action in self.actions]


# --- reading the built files ----------------------------------------------------------------------------


def _yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PushError(f"{path} is missing: run `sgi grafana build --out {path.parents[1]}` first")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise PushError(f"{path}: not a provisioning file")
    return document


def _dashboards(provisioning_dir: Path) -> list[dict[str, Any]]:
    paths = sorted((provisioning_dir / DASHBOARD_DIR).glob("*.json"))
    if not paths:
        raise PushError(f"no dashboards under {provisioning_dir / DASHBOARD_DIR}: run `sgi grafana build` first")
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def expand_env(value: T, env: Mapping[str, str], missing: set[str]) -> T:
    """`$VAR` / `${VAR}` in every string of `value`, as Grafana expands provisioning files (`$$` is a
    literal `$`). Names that are unset or empty are collected in `missing`."""
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if not env.get(name):
                missing.add(name)
                return ""
            return env[name]

        return "$".join(_ENV_VAR.sub(substitute, part) for part in value.split("$$"))  # type: ignore[return-value]
    if isinstance(value, dict):
        return {key: expand_env(item, env, missing) for key, item in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [expand_env(item, env, missing) for item in value]  # type: ignore[return-value]
    return value


def _expanded(value: T, env: Mapping[str, str], what: str) -> T:
    missing: set[str] = set()
    result = expand_env(value, env, missing)
    if missing:
        names = ", ".join(sorted(missing))
        raise PushError(f"{what} needs {names}: set {'it' if len(missing) == 1 else 'them'} in the environment")
    return result


# --- the calls --------------------------------------------------------------------------------------------


def _status(error: GrafanaException) -> int:
    return int(getattr(error, "status_code", 0) or 0)


def _call(step: str, url: str, action: Callable[[], T]) -> T:
    """Run one API call; turn transport and HTTP failures into a PushError that says what to do."""
    try:
        return action()
    except GrafanaUnauthorizedError as error:
        raise PushError(
            f"Grafana at {url} rejected the token (401 Unauthorized) while {step}: check --token or "
            "SGI_GRAFANA_TOKEN (a service account token with the Admin role)"
        ) from error
    except GrafanaClientError as error:
        if _status(error) == 403:
            raise PushError(
                f"Grafana at {url} refused {step} (403 Forbidden): the token's service account needs the Admin "
                "role (folders, dashboards and alerting provisioning)"
            ) from error
        raise PushError(f"Grafana at {url} refused {step}: {error}") from error
    except GrafanaException as error:
        raise PushError(f"Grafana at {url} failed while {step}: {error}") from error
    except niquests.exceptions.ConnectionError as error:
        raise PushError(
            f"cannot connect to Grafana at {url} ({_reason(error)}): is it running, and is the URL right?"
        ) from error
    except niquests.exceptions.RequestException as error:
        raise PushError(f"request to Grafana at {url} failed while {step}: {error}") from error


def _reason(error: Exception) -> str:
    text = str(error)
    return "connection refused" if "refused" in text.lower() else text


def _get_or_none(step: str, url: str, action: Callable[[], T]) -> T | None:
    """A GET that may 404 (the resource does not exist yet)."""
    try:
        return _call(step, url, action)
    except PushError as error:
        cause = error.__cause__
        if isinstance(cause, GrafanaClientError) and _status(cause) == 404:
            return None
        raise


def _folder(api: GrafanaApi, url: str, report: PushReport) -> str:
    """The Safeguarding folder's uid: ours if it exists, else one titled "Safeguarding" (e.g. created by
    file provisioning), else a new one with our uid."""
    found = _get_or_none("reading the Safeguarding folder", url, lambda: api.folder.get_folder(FOLDER_UID))
    if found is not None:
        if found.get("title") != FOLDER_TITLE:
            _call("renaming the Safeguarding folder", url,
                  lambda: api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True))
            report.add("folder", FOLDER_TITLE, "updated")
        return FOLDER_UID
    folders = _call("listing folders", url, api.folder.get_all_folders) or []
    for folder in folders:
        if folder.get("title") == FOLDER_TITLE:
            return str(folder["uid"])
    _call("creating the Safeguarding folder", url, lambda: api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID))
    report.add("folder", FOLDER_TITLE, "created")
    return FOLDER_UID


@dataclass(frozen=True)
class Plan:
    """Everything to send, read from the built files and expanded before the first call."""

    dashboards: list[dict[str, Any]]
    datasources: list[dict[str, Any]]
    contact_points: list[dict[str, Any]]  # one per receiver, as the API takes them
    policies: list[dict[str, Any]]
    groups: list[dict[str, Any]]


def plan(provisioning_dir: Path, env: Mapping[str, str], datasource: bool) -> Plan:
    """Read and check the built files; a missing file or variable fails here, before Grafana is touched."""
    datasources = []
    if datasource:
        for entry in _yaml(provisioning_dir / "datasources" / "clickhouse.yaml")["datasources"]:
            body = {key: entry[key] for key in ("name", "type", "uid", "access", "isDefault", "jsonData",
                                                 "secureJsonData") if key in entry}
            datasources.append(_expanded(body, env, f"data source {entry['name']!r}"))
    contact_points = []
    for point in _yaml(provisioning_dir / "alerting" / "contact-points.yaml")["contactPoints"]:
        for receiver in point["receivers"]:
            contact_points.append({
                "uid": receiver["uid"],
                "name": point["name"],
                "type": receiver["type"],
                "settings": _expanded(receiver["settings"], env,
                                      f"contact point {point['name']!r} ({receiver['type']})"),
                "disableResolveMessage": receiver.get("disableResolveMessage", False),
            })
    policies = [{key: value for key, value in policy.items() if key != "orgId"}
                for policy in _yaml(provisioning_dir / "alerting" / "policies.yaml")["policies"]]
    groups = _yaml(provisioning_dir / "alerting" / "rules.yaml")["groups"]
    return Plan(_dashboards(provisioning_dir), datasources, contact_points, policies, groups)


def _datasources(api: GrafanaApi, url: str, bodies: list[dict[str, Any]], report: PushReport) -> None:
    for body in bodies:
        uid = body["uid"]
        existing = _get_or_none(f"reading data source {uid}", url,
                                partial(api.datasource.get_datasource_by_uid, uid))
        if existing is None:
            _call(f"creating data source {uid}", url, partial(api.datasource.create_datasource, body))
            report.add("datasource", body["name"], "created")
        else:
            _call(f"updating data source {uid}", url,
                  partial(api.datasource.update_datasource_by_uid, uid, body))
            report.add("datasource", body["name"], "updated")


def _dashboards_to(api: GrafanaApi, url: str, boards: list[dict[str, Any]], folder_uid: str,
                   report: PushReport) -> None:
    for board in boards:
        body = {"dashboard": {**board, "id": None}, "folderUid": folder_uid, "overwrite": True,
                "message": PUSH_MESSAGE}
        _call(f"saving dashboard {board['uid']}", url, partial(api.dashboard.update_dashboard, body))
        report.add("dashboard", board["title"], "set")


def _contact_points(api: GrafanaApi, url: str, bodies: list[dict[str, Any]], editable: bool,
                    report: PushReport) -> None:
    provisioning = api.alertingprovisioning
    known: dict[str, set[str]] = {}
    for body in bodies:
        name = body["name"]
        if name not in known:
            existing = _call(f"reading contact point {name!r}", url,
                             partial(provisioning.get_contactpoints, name))
            known[name] = {item.get("uid") for item in existing or []}
        label = f"{name} ({body['type']})"
        if body["uid"] in known[name]:
            _call(f"updating contact point {label}", url, partial(
                provisioning.update_contactpoint, body["uid"], body, disable_provenance=editable))
            report.add("contact point", label, "updated")
        else:
            _call(f"creating contact point {label}", url, partial(
                provisioning.create_contactpoint, body, disable_provenance=editable))
            report.add("contact point", label, "created")


def _policies(api: GrafanaApi, url: str, trees: list[dict[str, Any]], editable: bool, report: PushReport) -> None:
    for tree in trees:
        _call("setting the notification policy tree", url,
              partial(api.alertingprovisioning.set_notification_policy_tree, tree,
                      disable_provenance=editable))
        report.add("policy", f"root -> {tree.get('receiver')}", "set")


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    match = re.fullmatch(r"(\d+)([smhd])", duration)
    if match is None:
        raise PushError(f"rule group interval {duration!r} is not like 1m, 5m, 1h")
    return int(match.group(1)) * units[match.group(2)]


def _rules(api: GrafanaApi, url: str, groups: list[dict[str, Any]], folder_uid: str, editable: bool,
           report: PushReport) -> None:
    provisioning = api.alertingprovisioning
    for group in groups:
        rules = [rule_from_file(entry, group["name"], folder_uid) for entry in group["rules"]]
        for rule in rules:
            uid = rule["uid"]
            existing = _get_or_none(f"reading alert rule {uid}", url, partial(provisioning.get_alertrule, uid))
            if existing is None:
                _call(f"creating alert rule {uid}", url, partial(
                    provisioning.create_alertrule, rule, disable_provenance=editable))
                report.add("alert rule", rule["title"], "created")
            else:
                _call(f"updating alert rule {uid}", url, partial(
                    provisioning.update_alertrule, rule["uid"], rule, disable_provenance=editable))
                report.add("alert rule", rule["title"], "updated")
        body = {"title": group["name"], "folderUid": folder_uid, "interval": _seconds(group["interval"]),
                "rules": rules}
        # The group's title is a path segment ("CMOG chair"): quoted here, the client does not.
        _call(f"setting rule group {group['name']!r}", url, partial(
            provisioning.update_rule_group, folder_uid, quote(body["title"], safe=""), body,
            disable_provenance=editable))
        report.add("rule group", f"{group['name']} every {group['interval']}", "set")


def push(
    url: str,
    token: str,
    provisioning_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    datasource: bool = False,
    editable: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> PushReport:
    """Deploy `provisioning_dir` (the output of `grafana.build.build`) to the Grafana at `url`.

    `env` supplies the variables the contact point (and, with `datasource=True`, the data source) name;
    nothing is read from os.environ here. Raises PushError with what to do on any failure."""
    if not token:
        raise PushError("no Grafana token: pass --token or set SGI_GRAFANA_TOKEN (a service account token)")
    todo = plan(Path(provisioning_dir), env or {}, datasource)
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    report = PushReport()
    report.folder_uid = _folder(api, url, report)
    _datasources(api, url, todo.datasources, report)
    _dashboards_to(api, url, todo.dashboards, report.folder_uid, report)
    _contact_points(api, url, todo.contact_points, editable, report)
    _policies(api, url, todo.policies, editable, report)
    _rules(api, url, todo.groups, report.folder_uid, editable, report)
    return report
