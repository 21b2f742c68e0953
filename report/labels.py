"""How the pack names things and writes values: rule and agency labels, escaped text, local times, keys."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

MARKING = "OFFICIAL-SENSITIVE"
KEY_CHARS = 12  # a shortened key still finds the child on the Grafana board (prefix search)

RULE_LABELS = {
    "rhi_overdue": "Return interview overdue",
    "repeat_missing": "Repeat missing",
    "long_missing": "Missing over 24 h",
    "missing_while_vulnerable": "Missing while at CSE risk",
    "police_high_risk": "Police high-risk missing",
    "cse_risk_raised": "CSE risk raised",
    "cse_low_under13": "CSE low risk, under 13 / LD",
    "da_high_risk_no_marac": "High-risk DA, no MARAC",
    "da_escalation": "DA escalating",
    "encompass_overdue": "Encompass notice late",
    "cp_repeat_plan": "Repeat CP plan",
    "da_on_cp_plan": "DA while on CP plan",
    "multi_agency_concern": "Multi-agency concern",
    "hotspot_emerging": "Hotspot emerging",
    "linked_children": "Children at CSE risk linked",
    "cmog_action_overdue": "CMOG action overdue",
    "cmog_drift": "On the CMOG list, not reviewed",
}
CP_CATEGORIES = {"EMO": "Emotional abuse", "NEG": "Neglect", "SAB": "Sexual abuse", "PHY": "Physical abuse",
                 "MUL": "Multiple"}

HOW_TO_READ = (
    "Each child appears under a pseudonymous key (the first {key_chars} characters): search for it on the "
    "Grafana child board to see the history; no name or identifier leaves the partner systems. "
    "Figures are as of {as_of} over the {days} days before it. <em>Missing now</em> and open alerts are as of "
    "that moment; CSE level, CP plans and looked-after status are the latest child records. A return "
    "interview counts as on time when it was completed or declined within {rhi_hours} hours of the return; "
    "returns whose deadline has not yet passed are left out. Each missing episode counts once, whatever "
    "identifiers it was reported under. The agenda ranks children by priority: the sum of the "
    "weights (rules config) of the distinct rules among the child's new alerts, open and not yet named in a CMOG "
    "review; the most recent alert breaks ties. Actions are overdue when neither done nor cancelled by their "
    "due time. Places count distinct children linked to the "
    "premises (last seen, found, or named at a return interview) in the period; family and foster homes are "
    "left out, as the hotspot rules leave them, and residential addresses never carry a name."
)



def text(value: Any) -> str:
    """Any value as escaped HTML text; None as a dash."""
    if value is None or value == "":
        return "&ndash;"
    return escape(str(value))


def local_time(moment: datetime | None, zone: ZoneInfo, with_time: bool = True) -> str:
    if moment is None:
        return "–"
    local = moment.astimezone(zone)
    return local.strftime("%d %b %Y %H:%M") if with_time else local.strftime("%d %b %Y")


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def short_key(key: str) -> str:
    return key[:KEY_CHARS]


def rule_label(rule: str) -> str:
    return RULE_LABELS.get(rule, rule.replace("_", " "))


AGENCY_LABELS = {"childrens_social_care": "social care", "voluntary_sector": "voluntary",
                 "youth_justice": "youth justice"}


def agency_label(agency: str) -> str:
    return AGENCY_LABELS.get(agency, agency.replace("_", " "))


def badge(label: str, kind: str) -> str:
    return f'<span class="badge {escape(kind, quote=True)}">{escape(label)}</span>'



def place_label(row: dict[str, Any]) -> str:
    category = (row["category"] or "place").replace("_", " ")
    name = row["name"] or f"{category} (name withheld)"
    return f"{name}, {row['ward'] or row['sector'] or 'ward unknown'}"

