"""Every threshold of the alert rules, in one config (STYLE principle 10: thresholds are data).

The shipped defaults live in `rules.default.json` next to this module: that file is the one
place the numbers of EVENTS.md are written down. A user's file is merged over it key by key, so
an override names only what it changes, e.g. `{"rules": {"repeat_missing": {"count": 4}}}`.
Unknown keys are errors: a typo in a threshold's name must not silently keep the default.
"""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.events import CseLevel, DashRisk, PoliceRisk, PremisesCategory

RuleId = Literal[
    "rhi_overdue",
    "repeat_missing",
    "long_missing",
    "missing_while_vulnerable",
    "police_high_risk",
    "cse_risk_raised",
    "cse_low_under13",
    "da_high_risk_no_marac",
    "da_escalation",
    "encompass_overdue",
    "cp_repeat_plan",
    "da_on_cp_plan",
    "multi_agency_concern",
    "hotspot_emerging",
    "linked_children",
]
RULE_IDS: tuple[RuleId, ...] = get_args(RuleId)

DEFAULT_RULES_FILE = "rules.default.json"
SNAPSHOT_WINDOW = timedelta(days=365)  # ChildSnapshot.da_incidents_12m and agencies


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleConfig(_Frozen):
    enabled: bool


class DeadlineRule(RuleConfig):
    hours: float = Field(gt=0)

    @property
    def delay(self) -> timedelta:
        return timedelta(hours=self.hours)


class RollingCountRule(RuleConfig):
    count: int = Field(ge=1)
    window_days: float = Field(gt=0)

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)


class MissingWhileVulnerableRule(RuleConfig):
    cse_levels: frozenset[CseLevel]


class PoliceHighRiskRule(RuleConfig):
    risks: frozenset[PoliceRisk]


class CseRiskRaisedRule(RuleConfig):
    levels: frozenset[CseLevel]


class CseLowUnder13Rule(RuleConfig):
    under_age: int = Field(ge=0)
    learning_disability: bool


class DaHighRiskNoMaracRule(RuleConfig):
    dash_score_threshold: int = Field(ge=0, le=24)
    dash_risks: frozenset[DashRisk]


class EncompassRule(RuleConfig):
    deadline_time: time  # local time (RulesConfig.timezone) on the next school day
    school_age_min: int = Field(ge=0)
    school_age_max: int = Field(ge=0)
    # Bank holidays and INSET days the local authority wants skipped, as local dates.
    non_school_days: frozenset[date]


class CpRepeatPlanRule(RuleConfig):
    previous_plans_min: int = Field(ge=1)


class LinkedChildrenRule(RollingCountRule):
    cse_levels: frozenset[CseLevel]


class Rules(_Frozen):
    rhi_overdue: DeadlineRule
    repeat_missing: RollingCountRule
    long_missing: DeadlineRule
    missing_while_vulnerable: MissingWhileVulnerableRule
    police_high_risk: PoliceHighRiskRule
    cse_risk_raised: CseRiskRaisedRule
    cse_low_under13: CseLowUnder13Rule
    da_high_risk_no_marac: DaHighRiskNoMaracRule
    da_escalation: RollingCountRule
    encompass_overdue: EncompassRule
    cp_repeat_plan: CpRepeatPlanRule
    da_on_cp_plan: RuleConfig
    multi_agency_concern: RollingCountRule
    hotspot_emerging: RollingCountRule
    linked_children: LinkedChildrenRule


class PipelineHealth(_Frozen):
    """Read by the Grafana alert rules, not by the stream: thresholds for the pipeline itself."""

    agency_silence_hours: float = Field(gt=0)
    deadletter_spike_per_hour: int = Field(ge=1)


# The agenda weighs the CMOG's own rules (contract v1.1) too, whichever release of the core raises them.
AGENDA_RULE_IDS: tuple[str, ...] = (*RULE_IDS, "cmog_action_overdue", "cmog_drift")


class Agenda(_Frozen):
    """The CMOG agenda (EVENTS.md v1.1): a child's priority is the sum of the weights of the distinct rules
    among its open unreviewed alerts; the agenda shows the `top` children, then a count of the rest."""

    top: int = Field(ge=1)
    weights: dict[str, int]

    @field_validator("weights")
    @classmethod
    def _known_rules(cls, weights: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(weights) - set(AGENDA_RULE_IDS))
        if unknown:
            raise ValueError(f"unknown rule(s) {', '.join(unknown)}; known: {', '.join(AGENDA_RULE_IDS)}")
        negative = sorted(rule for rule, weight in weights.items() if weight < 0)
        if negative:
            raise ValueError(f"weights must be 0 or more: {', '.join(negative)}")
        return weights

    def weight(self, rule: str) -> int:
        """A rule's weight; a rule the config does not weigh counts 0."""
        return self.weights.get(rule, 0)


class RulesConfig(_Frozen):
    version: Literal[1]
    # The authority's local time: school days, the Encompass deadline, ages from birth months.
    timezone: str
    lateness_days: float = Field(ge=0)
    rules: Rules
    pipeline_health: PipelineHealth
    agenda: Agenda
    # The rules whose alerts the CMOG chair is notified about.
    chair_rules: tuple[RuleId, ...]
    # Which places hotspot_emerging and linked_children judge. Premises only by default: a whole
    # ward or postcode sector reaches 3 children in 28 days in any city, and family homes link
    # siblings. Every place kind is still counted for the boards.
    place_kinds: tuple[Literal["premises", "sector", "ward"], ...] = ("premises",)
    place_exclude_categories: tuple[PremisesCategory, ...] = (PremisesCategory.home, PremisesCategory.foster_home)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError) as error:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def enabled(self, rule: str) -> bool:
        rule_config: RuleConfig = getattr(self.rules, rule)
        return rule_config.enabled

    @property
    def lateness(self) -> timedelta:
        return timedelta(days=self.lateness_days)

    @property
    def child_window(self) -> timedelta:
        """The longest look-back a child needs: any rule's window (a deadline counts as one), and
        the 12 months the ChildSnapshot counts DA incidents and agencies over."""
        rules = self.rules
        return max(
            rules.repeat_missing.window,
            rules.da_escalation.window,
            rules.multi_agency_concern.window,
            rules.rhi_overdue.delay,
            rules.long_missing.delay,
            timedelta(days=7),  # an Encompass deadline is at most a long weekend (plus holidays) away
            SNAPSHOT_WINDOW,
        )

    @property
    def child_horizon(self) -> timedelta:
        """How far back a child's facts are kept: the longest window plus the lateness bound."""
        return self.child_window + self.lateness

    @property
    def place_horizon(self) -> timedelta:
        rules = self.rules
        return max(rules.hotspot_emerging.window, rules.linked_children.window) + self.lateness


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: objects merge key by key; anything else (numbers, lists) replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def default_rules_document() -> dict[str, Any]:
    """The shipped defaults as a JSON object (the file users copy and edit)."""
    text = resources.files("streams.core").joinpath(DEFAULT_RULES_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def rules_from(overrides: dict[str, Any] | None = None) -> RulesConfig:
    """The shipped defaults with `overrides` merged over them (what tests use)."""
    return RulesConfig.model_validate(_merge(default_rules_document(), overrides or {}))


def load_rules(path: Path | None = None) -> RulesConfig:
    """The rules config: shipped defaults, with the JSON file at `path` (if given) merged over them.

    Raises ValueError (a pydantic ValidationError) naming the bad key when the file breaks the schema.
    """
    if path is None:
        return rules_from()
    overrides = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(overrides, dict):
        raise ValueError(f"{path}: a rules config must be a JSON object")
    return rules_from(overrides)
