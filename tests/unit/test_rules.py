"""Each rule of EVENTS.md: where it fires, at its boundary where it does not, and where it resolves.

Events go through the real path (contract JSON -> ingest -> Engine) with the replay clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from models.derived import Place
from models.events import PremisesCategory
from streams.core.clock import age_at, encompass_deadline, next_school_day
from streams.core.config import RULE_IDS, load_rules, rules_from
from streams.core.places import place_keys
from tests.unit.builders import (
    DAY,
    HOUR,
    T0,
    Kid,
    alerts_for,
    cse,
    da,
    episode,
    event,
    interview_completed,
    interview_declined,
    interview_offered,
    missing_ended,
    missing_started,
    place,
    plan_ended,
    plan_started,
    risk_graded,
    run,
)

LONDON = ZoneInfo("Europe/London")
SECOND = timedelta(seconds=1)
KID = Kid.make(1)


def only(engine, rule):  # type: ignore[no-untyped-def]
    """The one shown (open or resolved) alert of `rule`."""
    alerts = alerts_for(engine, rule, shown_only=True)
    assert len(alerts) == 1, alerts
    return alerts[0]


def none_of(engine, rule) -> None:  # type: ignore[no-untyped-def]
    assert alerts_for(engine, rule, shown_only=True) == []


# --- config ------------------------------------------------------------------------------------


def test_default_config_has_every_threshold_of_the_contract() -> None:
    config = load_rules()
    rules = config.rules
    assert config.lateness == timedelta(days=7)
    assert rules.rhi_overdue.delay == timedelta(hours=72)
    assert (rules.repeat_missing.count, rules.repeat_missing.window) == (3, timedelta(days=30))
    assert rules.long_missing.delay == timedelta(hours=24)
    assert rules.da_high_risk_no_marac.dash_score_threshold == 14
    assert (rules.da_escalation.count, rules.da_escalation.window) == (3, timedelta(days=365))
    assert (rules.encompass_overdue.school_age_min, rules.encompass_overdue.school_age_max) == (4, 17)
    assert rules.encompass_overdue.deadline_time.hour == 9 and config.timezone == "Europe/London"
    assert (rules.multi_agency_concern.count, rules.multi_agency_concern.window) == (3, timedelta(days=30))
    assert (rules.hotspot_emerging.count, rules.hotspot_emerging.window) == (3, timedelta(days=28))
    assert rules.linked_children.window == timedelta(days=28)
    assert rules.cse_low_under13.under_age == 13
    assert config.pipeline_health.agency_silence_hours == 24
    assert config.pipeline_health.deadletter_spike_per_hour == 50
    assert set(config.chair_rules) == set(RULE_IDS) and len(RULE_IDS) == 15


def test_a_user_file_overrides_only_what_it_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.json"
    path.write_text('{"rules": {"repeat_missing": {"count": 4}}, "chair_rules": ["rhi_overdue"]}')
    config = load_rules(path)
    assert config.rules.repeat_missing.count == 4
    assert config.rules.repeat_missing.window == timedelta(days=30)
    assert config.chair_rules == ("rhi_overdue",)


def test_a_typo_in_a_user_file_is_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "rules.json"
    path.write_text('{"rules": {"repeat_missing": {"cuont": 4}}}')
    with pytest.raises(ValueError, match="cuont"):
        load_rules(path)


def test_a_disabled_rule_never_fires() -> None:
    engine = run([missing_started(KID, T0, "E1")], until=T0 + 2 * DAY,
                 config=rules_from({"rules": {"long_missing": {"enabled": False}}}))
    none_of(engine, "long_missing")


# --- rhi_overdue -------------------------------------------------------------------------------

RETURN = T0 + 5 * HOUR
RHI_DUE = RETURN + 72 * HOUR


def _episode(*extra):  # type: ignore[no-untyped-def]
    return [missing_started(KID, T0, "E1"), missing_ended(KID, RETURN, "E1"), *extra]


def test_rhi_overdue_fires_once_the_clock_passes_72h_after_return() -> None:
    alert = only(run(_episode(), until=RHI_DUE + SECOND), "rhi_overdue")
    assert (alert.status, alert.opened_at, alert.resolved_at) == ("open", RHI_DUE, None)
    assert alert.subject == KID.key and alert.subject_kind == "child"
    assert len(alert.evidence) == 2


def test_rhi_overdue_does_not_fire_at_exactly_72h() -> None:
    none_of(run(_episode(), until=RHI_DUE), "rhi_overdue")


def test_rhi_interview_at_exactly_72h_is_in_time() -> None:
    none_of(run(_episode(interview_completed(KID, RHI_DUE, "E1")), until=RHI_DUE + DAY), "rhi_overdue")


def test_rhi_declined_interview_meets_the_need_but_an_offer_does_not() -> None:
    none_of(run(_episode(interview_declined(KID, RETURN + DAY, "E1")), until=RHI_DUE + DAY), "rhi_overdue")
    alert = only(run(_episode(interview_offered(KID, RETURN + DAY, "E1")), until=RHI_DUE + DAY), "rhi_overdue")
    assert alert.status == "open"


def test_rhi_overdue_resolves_when_the_interview_is_late() -> None:
    late = RHI_DUE + 3 * HOUR
    alert = only(run(_episode(interview_completed(KID, late, "E1")), until=late + DAY), "rhi_overdue")
    assert (alert.status, alert.opened_at, alert.resolved_at) == ("resolved", RHI_DUE, late)
    assert len(alert.evidence) == 3


def test_rhi_interview_for_another_episode_does_not_count() -> None:
    alert = only(run(_episode(interview_completed(KID, RETURN + HOUR, "E2")), until=RHI_DUE + DAY), "rhi_overdue")
    assert alert.status == "open"


# --- long_missing ------------------------------------------------------------------------------


def test_long_missing_fires_after_24h_open() -> None:
    alert = only(run([missing_started(KID, T0, "E1")], until=T0 + 24 * HOUR + SECOND), "long_missing")
    assert (alert.status, alert.opened_at) == ("open", T0 + 24 * HOUR)


def test_long_missing_boundary() -> None:
    none_of(run([missing_started(KID, T0, "E1")], until=T0 + 24 * HOUR), "long_missing")
    none_of(run([missing_started(KID, T0, "E1"), missing_ended(KID, T0 + 24 * HOUR, "E1")], until=T0 + 3 * DAY),
            "long_missing")


def test_long_missing_resolves_at_the_return() -> None:
    engine = run([missing_started(KID, T0, "E1"), missing_ended(KID, T0 + 30 * HOUR, "E1")], until=T0 + 3 * DAY)
    alert = only(engine, "long_missing")
    assert (alert.status, alert.resolved_at) == ("resolved", T0 + 30 * HOUR)


# --- repeat_missing ----------------------------------------------------------------------------


def _starts(*offsets: timedelta):  # type: ignore[no-untyped-def]
    docs = []
    for n, offset in enumerate(offsets):
        docs += [missing_started(KID, T0 + offset, f"E{n}"), missing_ended(KID, T0 + offset + HOUR, f"E{n}")]
    return docs


def test_repeat_missing_fires_on_the_third_start_within_30_days() -> None:
    third = T0 + 30 * DAY - SECOND
    alert = only(run([*_starts(timedelta(0), 10 * DAY), missing_started(KID, third, "E3")]), "repeat_missing")
    assert (alert.status, alert.opened_at) == ("open", third)
    assert len(alert.evidence) == 3
    # ...and resolves the moment the first start leaves the window.
    alert = only(run(_starts(timedelta(0), 10 * DAY, 30 * DAY - SECOND)), "repeat_missing")
    assert (alert.status, alert.resolved_at) == ("resolved", T0 + 30 * DAY)


def test_repeat_missing_boundaries() -> None:
    none_of(run(_starts(timedelta(0), 10 * DAY), until=T0 + 20 * DAY), "repeat_missing")
    none_of(run(_starts(timedelta(0), 10 * DAY, 30 * DAY + SECOND)), "repeat_missing")


def test_repeat_missing_resolves_when_the_window_moves_past_the_first_start() -> None:
    alert = only(run(_starts(timedelta(0), 10 * DAY, 20 * DAY), until=T0 + 40 * DAY), "repeat_missing")
    assert (alert.status, alert.opened_at, alert.resolved_at) == ("resolved", T0 + 20 * DAY, T0 + 30 * DAY)


def test_repeat_missing_one_alert_while_the_count_stays_up() -> None:
    # 4 starts 8 days apart: the count never drops below 3 between the 3rd and the 4th.
    alert = only(run(_starts(timedelta(0), 8 * DAY, 16 * DAY, 24 * DAY), until=T0 + 70 * DAY), "repeat_missing")
    assert (alert.opened_at, alert.resolved_at) == (T0 + 16 * DAY, T0 + 38 * DAY)
    assert len(alert.evidence) == 4


def test_a_duplicated_start_is_flagged_and_not_counted_twice() -> None:
    docs = [
        missing_started(KID, T0, "E1"),
        missing_started(KID, T0 + HOUR, "E1"),
        missing_started(KID, T0 + 2 * HOUR, "E2"),
        missing_ended(KID, T0 + 3 * HOUR, "E1"),
        missing_ended(KID, T0 + 3 * HOUR, "E2"),
    ]
    engine = run(docs)
    none_of(engine, "repeat_missing")
    assert engine.episodes[(KID.key, episode("E1"))].data_quality == ["started again while open"]


def test_an_end_without_a_start_is_kept_flagged_and_clears_when_the_start_arrives() -> None:
    end = missing_ended(KID, T0 + HOUR, "E1")
    engine = run([end])
    assert engine.episodes[(KID.key, episode("E1"))].data_quality == ["ended without a start"]
    engine = run([end, missing_started(KID, T0, "E1")])
    found = engine.episodes[(KID.key, episode("E1"))]
    assert found.data_quality == [] and found.started_at == T0


# --- missing_while_vulnerable ------------------------------------------------------------------


def test_missing_while_looked_after_fires_and_resolves_at_the_return() -> None:
    kid = Kid.make(2, looked_after=True)
    engine = run([missing_started(kid, T0, "E1"), missing_ended(kid, T0 + 5 * HOUR, "E1")])
    alert = only(engine, "missing_while_vulnerable")
    assert (alert.opened_at, alert.resolved_at, alert.status) == (T0, T0 + 5 * HOUR, "resolved")
    assert "looked after" in alert.summary


def test_missing_while_on_a_cp_plan_fires_but_not_after_the_plan_ended() -> None:
    on_plan = run([plan_started(KID, T0 - 10 * DAY, "P1"), missing_started(KID, T0, "E1")])
    assert only(on_plan, "missing_while_vulnerable").status == "open"
    ended = run([plan_started(KID, T0 - 10 * DAY, "P1"), plan_ended(KID, T0 - DAY, "P1"),
                 missing_started(KID, T0, "E1")])
    none_of(ended, "missing_while_vulnerable")


def test_missing_at_cse_risk_uses_the_level_as_of_the_start() -> None:
    at_risk = run([cse(KID, T0 - DAY, "medium"), missing_started(KID, T0, "E1")])
    assert only(at_risk, "missing_while_vulnerable").evidence[0] == at_risk.alerts[
        only(at_risk, "missing_while_vulnerable").alert_id].evidence[0]
    none_of(run([cse(KID, T0 - DAY, "low"), missing_started(KID, T0, "E1")]), "missing_while_vulnerable")
    none_of(run([missing_started(KID, T0, "E1"), cse(KID, T0 + HOUR, "high")]), "missing_while_vulnerable")


# --- police_high_risk --------------------------------------------------------------------------


def test_police_high_risk_at_the_start_resolves_at_the_end() -> None:
    engine = run([missing_started(KID, T0, "E1", risk="high"), missing_ended(KID, T0 + 3 * HOUR, "E1")])
    alert = only(engine, "police_high_risk")
    assert (alert.opened_at, alert.resolved_at) == (T0, T0 + 3 * HOUR)


def test_police_high_risk_regrade_opens_and_a_downgrade_resolves() -> None:
    docs = [
        missing_started(KID, T0, "E1", risk="medium"),
        risk_graded(KID, T0 + HOUR, "E1", "high"),
        risk_graded(KID, T0 + 2 * HOUR, "E1", "low"),
    ]
    alert = only(run(docs), "police_high_risk")
    assert (alert.opened_at, alert.resolved_at, alert.status) == (T0 + HOUR, T0 + 2 * HOUR, "resolved")


def test_police_medium_risk_does_not_fire() -> None:
    none_of(run([missing_started(KID, T0, "E1", risk="medium")]), "police_high_risk")


# --- cse_risk_raised ---------------------------------------------------------------------------


def test_cse_rise_from_never_assessed_to_medium_fires() -> None:
    alert = only(run([cse(KID, T0, "medium")]), "cse_risk_raised")
    assert (alert.opened_at, alert.status) == (T0, "open")
    assert "none to medium" in alert.summary


def test_cse_low_or_steady_is_not_a_rise() -> None:
    none_of(run([cse(KID, T0, "low")]), "cse_risk_raised")
    engine = run([cse(KID, T0, "high"), cse(KID, T0 + DAY, "high"), cse(KID, T0 + 2 * DAY, "medium")])
    assert len(alerts_for(engine, "cse_risk_raised", shown_only=True)) == 1


def test_each_rise_is_an_alert_and_an_assessment_below_medium_resolves_them() -> None:
    docs = [cse(KID, T0, "medium"), cse(KID, T0 + DAY, "high"), cse(KID, T0 + 5 * DAY, "low")]
    alerts = alerts_for(run(docs), "cse_risk_raised", shown_only=True)
    assert [(a.opened_at, a.resolved_at) for a in alerts] == [(T0, T0 + 5 * DAY), (T0 + DAY, T0 + 5 * DAY)]


# --- cse_low_under13 ---------------------------------------------------------------------------


def test_cse_low_under_13_fires_and_resolves_at_a_later_non_low_assessment() -> None:
    twelve = Kid.make(3, birth_month="2013-04")  # 12 on 2 March 2026 (13 from 1 April)
    alert = only(run([cse(twelve, T0, "low"), cse(twelve, T0 + 3 * DAY, "low"), cse(twelve, T0 + 9 * DAY, "medium")]),
                 "cse_low_under13")
    assert (alert.opened_at, alert.resolved_at) == (T0, T0 + 9 * DAY)


def test_cse_low_at_13_does_not_fire_but_with_a_learning_disability_it_does() -> None:
    thirteen = Kid.make(4, birth_month="2013-03")  # 13 from 1 March 2026
    none_of(run([cse(thirteen, T0, "low")]), "cse_low_under13")
    disabled = Kid.make(5, birth_month="2010-01", learning_disability=True)
    assert only(run([cse(disabled, T0, "low")]), "cse_low_under13").status == "open"
    none_of(run([cse(Kid.make(6, birth_month="2013-04"), T0, "medium")]), "cse_low_under13")


# --- da_high_risk_no_marac ---------------------------------------------------------------------


def test_dash_14_without_marac_fires_and_a_later_referral_resolves() -> None:
    docs = [da(KID, T0, "I1", dash=14, notified=T0), da(KID, T0 + 2 * DAY, "I1", dash=14, marac=True)]
    alert = only(run(docs), "da_high_risk_no_marac")
    assert (alert.opened_at, alert.resolved_at, alert.status) == (T0, T0 + 2 * DAY, "resolved")


def test_dash_13_does_not_fire_and_dash_risk_high_does() -> None:
    none_of(run([da(KID, T0, "I1", dash=13, notified=T0)]), "da_high_risk_no_marac")
    assert only(run([da(KID, T0, "I1", dash_risk="high", notified=T0)]), "da_high_risk_no_marac").status == "open"
    none_of(run([da(KID, T0, "I1", dash=20, marac=True, notified=T0)]), "da_high_risk_no_marac")


# --- da_escalation -----------------------------------------------------------------------------


def test_da_escalation_three_incidents_within_a_year() -> None:
    docs = [da(KID, T0 + n * 100 * DAY, f"I{n}", notified=T0 + n * 100 * DAY) for n in range(3)]
    alert = only(run(docs), "da_escalation")
    assert (alert.opened_at, alert.status) == (T0 + 200 * DAY, "open")
    resolved = only(run(docs, until=T0 + 400 * DAY), "da_escalation")
    assert resolved.resolved_at == T0 + 365 * DAY


def test_da_escalation_three_incidents_spanning_a_year_and_a_second() -> None:
    times = [T0, T0 + 100 * DAY, T0 + 365 * DAY + SECOND]
    none_of(run([da(KID, t, f"I{n}", notified=t) for n, t in enumerate(times)]), "da_escalation")


def test_reports_of_one_incident_count_once() -> None:
    docs = [da(KID, T0 + n * HOUR, "I1", notified=T0) for n in range(3)]
    none_of(run(docs), "da_escalation")


# --- encompass_overdue -------------------------------------------------------------------------

FRIDAY_EVENING = datetime(2026, 3, 6, 20, 0, tzinfo=LONDON)  # Friday, GMT
MONDAY_9 = datetime(2026, 3, 9, 9, 0, tzinfo=LONDON)


def test_encompass_deadline_is_the_next_weekday_at_9_london() -> None:
    assert encompass_deadline(FRIDAY_EVENING, LONDON) == MONDAY_9
    monday_8 = datetime(2026, 3, 9, 8, 0, tzinfo=LONDON)
    assert encompass_deadline(monday_8, LONDON) == datetime(2026, 3, 10, 9, 0, tzinfo=LONDON)
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=LONDON)
    assert encompass_deadline(saturday, LONDON) == MONDAY_9
    # Across the clocks going forward (Sunday 29 March 2026): 09:00 BST is 08:00 UTC.
    before_bst = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)
    assert encompass_deadline(before_bst, LONDON) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    # And back (Sunday 25 October 2026): 09:00 GMT is 09:00 UTC.
    before_gmt = datetime(2026, 10, 23, 20, 0, tzinfo=UTC)
    assert encompass_deadline(before_gmt, LONDON) == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)
    # 23:30 UTC on a Monday in summer is already Tuesday in London.
    late_monday = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    assert encompass_deadline(late_monday, LONDON) == datetime(2026, 6, 3, 8, 0, tzinfo=UTC)
    # Configured non-school days are skipped.
    assert next_school_day(date(2026, 4, 2), [date(2026, 4, 3), date(2026, 4, 6)]) == date(2026, 4, 7)


def test_encompass_notified_before_the_deadline_after_a_weekend_is_in_time() -> None:
    engine = run([da(KID, FRIDAY_EVENING, "I1", notified=MONDAY_9 - 30 * timedelta(minutes=1))], until=MONDAY_9 + DAY)
    none_of(engine, "encompass_overdue")


def test_encompass_never_notified_is_open_from_monday_9() -> None:
    alert = only(run([da(KID, FRIDAY_EVENING, "I1")], until=MONDAY_9 + HOUR), "encompass_overdue")
    assert (alert.status, alert.opened_at) == ("open", MONDAY_9.astimezone(UTC))
    none_of(run([da(KID, FRIDAY_EVENING, "I1")], until=MONDAY_9), "encompass_overdue")


def test_encompass_notified_late_on_a_later_report_resolves() -> None:
    docs = [da(KID, FRIDAY_EVENING, "I1"), da(KID, MONDAY_9 + 2 * HOUR, "I1", notified=MONDAY_9 + HOUR)]
    alert = only(run(docs, until=MONDAY_9 + DAY), "encompass_overdue")
    assert (alert.status, alert.resolved_at) == ("resolved", (MONDAY_9 + HOUR).astimezone(UTC))


def test_encompass_across_the_bst_change() -> None:
    friday = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)
    due = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 BST
    alert = only(run([da(KID, friday, "I1")], until=due + SECOND), "encompass_overdue")
    assert alert.opened_at == due
    none_of(run([da(KID, friday, "I1", notified=due - SECOND)], until=due + DAY), "encompass_overdue")


def test_encompass_needs_a_school_age_child_present() -> None:
    until = MONDAY_9 + DAY
    none_of(run([da(KID, FRIDAY_EVENING, "I1", present=False)], until=until), "encompass_overdue")
    none_of(run([da(Kid.make(7, birth_month="2022-06"), FRIDAY_EVENING, "I1")], until=until), "encompass_overdue")
    none_of(run([da(Kid.make(8, birth_month="2008-01"), FRIDAY_EVENING, "I1")], until=until), "encompass_overdue")
    assert only(run([da(Kid.make(9, birth_month="2008-04"), FRIDAY_EVENING, "I1")], until=until),
                "encompass_overdue").status == "open"  # 17 until April 2026


def test_age_is_from_the_first_of_the_birth_month_in_local_time() -> None:
    assert age_at("2013-03", datetime(2026, 3, 1, 0, 0, tzinfo=LONDON), LONDON) == 13
    assert age_at("2013-03", datetime(2026, 2, 28, 23, 59, tzinfo=LONDON), LONDON) == 12
    assert age_at(None, T0, LONDON) is None


# --- cp_repeat_plan / da_on_cp_plan ------------------------------------------------------------


def test_cp_repeat_plan_fires_and_resolves_when_the_plan_ends() -> None:
    alert = only(run([plan_started(KID, T0, "P1", previous=1), plan_ended(KID, T0 + 90 * DAY, "P1")]),
                 "cp_repeat_plan")
    assert (alert.opened_at, alert.resolved_at) == (T0, T0 + 90 * DAY)
    none_of(run([plan_started(KID, T0, "P1", previous=0)]), "cp_repeat_plan")


def test_da_on_cp_plan_fires_and_resolves_when_the_plan_ends() -> None:
    docs = [
        plan_started(KID, T0, "P1"),
        da(KID, T0 + DAY, "I1", notified=T0 + DAY),
        plan_ended(KID, T0 + 60 * DAY, "P1"),
    ]
    alert = only(run(docs), "da_on_cp_plan")
    assert (alert.opened_at, alert.resolved_at) == (T0 + DAY, T0 + 60 * DAY)
    none_of(run([da(KID, T0 - DAY, "I1", notified=T0), plan_started(KID, T0, "P1")]), "da_on_cp_plan")


# --- multi_agency_concern ----------------------------------------------------------------------


def test_multi_agency_concern_three_agencies_in_30_days() -> None:
    docs = [
        cse(KID, T0, "none", agency="health"),
        cse(KID, T0 + 10 * DAY, "none", agency="education"),
        cse(KID, T0 + 20 * DAY, "none", agency="police"),
    ]
    alert = only(run(docs), "multi_agency_concern")
    assert (alert.opened_at, alert.status, len(alert.evidence)) == (T0 + 20 * DAY, "open", 3)
    assert only(run(docs, until=T0 + 31 * DAY), "multi_agency_concern").resolved_at == T0 + 30 * DAY


def test_multi_agency_concern_boundaries() -> None:
    two = [cse(KID, T0, "none", agency="health"), cse(KID, T0 + DAY, "none", agency="health"),
           cse(KID, T0 + 2 * DAY, "none", agency="education")]
    none_of(run(two), "multi_agency_concern")
    spanning = [cse(KID, T0, "none", agency="health"), cse(KID, T0 + DAY, "none", agency="education"),
                cse(KID, T0 + 30 * DAY + SECOND, "none", agency="police")]
    none_of(run(spanning), "multi_agency_concern")


# --- places ------------------------------------------------------------------------------------

# The place rules judge premises (RulesConfig.place_kinds); sectors and wards are only counted.
SECTOR = place("CV1 2GN", premises={"category": "hotel", "name": "Larkspur Lodge"})
HOTEL_KEY = "premises:hotel:larkspur lodge:CV1 2"


def _last_seen(kid: Kid, at: datetime, ref: str, location=SECTOR):  # type: ignore[no-untyped-def]
    return missing_started(kid, at, ref, location=location)


def test_place_keys() -> None:
    takeaway = Place(postcode_sector="CV1 2", ward_code="E05001219", premises_category=PremisesCategory.takeaway,
                     premises_name="Chicken  Hut")
    assert place_keys(takeaway) == [
        ("premises:takeaway:chicken hut:CV1 2", "premises"),
        ("sector:CV1 2", "sector"),
        ("ward:E05001219", "ward"),
    ]
    home = Place(postcode_sector="CV1 2", premises_category=PremisesCategory.home)
    assert place_keys(home) == [("sector:CV1 2", "sector")]
    assert place_keys(Place(premises_ref="abc", ward_name="Foleshill")) == [
        ("premises:ref:abc", "premises"), ("ward-name:foleshill", "ward")]


def test_hotspot_three_children_in_28_days() -> None:
    kids = [Kid.make(10 + n) for n in range(3)]
    docs = [_last_seen(kid, T0 + n * 10 * DAY, f"E{n}") for n, kid in enumerate(kids)]
    alert = only(run(docs), "hotspot_emerging")
    assert (alert.subject_kind, alert.subject, alert.opened_at) == ("place", HOTEL_KEY, T0 + 20 * DAY)
    resolved = only(run(docs, until=T0 + 40 * DAY), "hotspot_emerging")
    assert resolved.resolved_at == T0 + 28 * DAY


def test_hotspot_boundaries() -> None:
    kids = [Kid.make(20 + n) for n in range(3)]
    none_of(run([_last_seen(kids[0], T0 + n * DAY, f"E{n}") for n in range(3)]), "hotspot_emerging")
    spanning = [T0, T0 + DAY, T0 + 28 * DAY + SECOND]
    none_of(run([_last_seen(kid, t, f"E{n}") for n, (kid, t) in enumerate(zip(kids, spanning, strict=True))]),
            "hotspot_emerging")


def test_hotspot_counts_found_and_named_places_too() -> None:
    kids = [Kid.make(30 + n) for n in range(3)]
    docs = [
        _last_seen(kids[0], T0, "E0"),
        missing_started(kids[1], T0, "E1"),
        missing_ended(kids[1], T0 + HOUR, "E1", location=SECTOR),
        missing_started(kids[2], T0, "E2"),
        missing_ended(kids[2], T0 + HOUR, "E2"),
        interview_completed(kids[2], T0 + DAY, "E2", places=[SECTOR]),
    ]
    assert only(run(docs), "hotspot_emerging").opened_at == T0 + DAY


def test_linked_children_with_one_at_cse_risk() -> None:
    kids = [Kid.make(40), Kid.make(41)]
    docs = [cse(kids[0], T0 - DAY, "high"), _last_seen(kids[0], T0, "E0"), _last_seen(kids[1], T0 + DAY, "E1")]
    alert = only(run(docs), "linked_children")
    assert (alert.subject, alert.opened_at) == (HOTEL_KEY, T0 + DAY)


def test_linked_children_needs_the_risk_as_of_the_link() -> None:
    kids = [Kid.make(42), Kid.make(43)]
    none_of(run([_last_seen(kids[0], T0, "E0"), _last_seen(kids[1], T0 + DAY, "E1")]), "linked_children")
    later = [_last_seen(kids[0], T0, "E0"), _last_seen(kids[1], T0 + DAY, "E1"), cse(kids[0], T0 + 2 * DAY, "high")]
    none_of(run(later), "linked_children")


def test_a_late_assessment_before_the_link_raises_linked_children() -> None:
    kids = [Kid.make(44), Kid.make(45)]
    docs = [_last_seen(kids[0], T0, "E0"), _last_seen(kids[1], T0 + DAY, "E1"), cse(kids[0], T0 - HOUR, "medium")]
    assert only(run(docs), "linked_children").opened_at == T0 + DAY


# --- late and out-of-order events --------------------------------------------------------------

OTHER = Kid.make(90)


def test_a_late_interview_that_was_in_time_withdraws_rhi_overdue() -> None:
    docs = [
        *_episode(),
        cse(OTHER, RHI_DUE + HOUR, "none"),  # another child's event moves the clock past the deadline
        interview_completed(KID, RETURN + DAY, "E1"),  # ...then the interview, done in time, arrives
    ]
    engine = run(docs)
    history = alerts_for(engine, "rhi_overdue")
    assert [a.status for a in history] == ["withdrawn"]
    assert engine.current_alerts() == []


def test_a_late_interview_after_the_deadline_resolves_rhi_overdue() -> None:
    docs = [*_episode(), cse(OTHER, RHI_DUE + 5 * HOUR, "none"), interview_completed(KID, RHI_DUE + 2 * HOUR, "E1")]
    alert = only(run(docs), "rhi_overdue")
    assert (alert.status, alert.resolved_at) == ("resolved", RHI_DUE + 2 * HOUR)


def test_an_interview_arriving_before_its_episode_end_counts_once_the_end_arrives() -> None:
    docs = [
        missing_started(KID, T0, "E1"),
        interview_completed(KID, RETURN + DAY, "E1"),
        missing_ended(KID, RETURN, "E1"),
    ]
    engine = run(docs, until=RHI_DUE + DAY)
    none_of(engine, "rhi_overdue")
    assert engine.episodes[(KID.key, episode("E1"))].interview == "completed"


def test_a_late_report_of_a_timely_encompass_notification_withdraws_the_alert() -> None:
    docs = [
        da(KID, FRIDAY_EVENING, "I1"),
        cse(OTHER, MONDAY_9 + 3 * HOUR, "none"),
        da(KID, MONDAY_9 + 4 * HOUR, "I1", notified=MONDAY_9 - HOUR),
    ]
    engine = run(docs)
    assert [a.status for a in alerts_for(engine, "encompass_overdue")] == ["withdrawn"]


def test_a_late_episode_end_in_time_withdraws_long_missing() -> None:
    docs = [
        missing_started(KID, T0, "E1"),
        cse(OTHER, T0 + 30 * HOUR, "none"),
        missing_ended(KID, T0 + 20 * HOUR, "E1"),
    ]
    assert [a.status for a in alerts_for(run(docs), "long_missing")] == ["withdrawn"]


def test_encompass_notification_stamped_on_the_incident_report_can_be_late() -> None:
    # The report is made on Friday evening but says the school was told on Monday at 10:00.
    engine = run([da(KID, FRIDAY_EVENING, "I1", notified=MONDAY_9 + HOUR)], until=MONDAY_9 + DAY)
    alert = only(engine, "encompass_overdue")
    assert (alert.status, alert.resolved_at) == ("resolved", (MONDAY_9 + HOUR).astimezone(UTC))


# --- the clock ---------------------------------------------------------------------------------


def test_a_child_is_ticked_only_when_something_is_due() -> None:
    from streams.core.clock import TICK

    engine = run([missing_started(KID, T0, "E1")])
    assert engine.children[KID.key].due_at == T0 + 24 * HOUR + TICK
    assert engine.advance(T0 + 24 * HOUR) == []
    records = engine.advance(T0 + 24 * HOUR + TICK)
    assert [getattr(r, "rule", None) for r in records if getattr(r, "rule", None)] == ["long_missing"]


def test_place_rules_judge_premises_but_not_family_homes_wards_or_sectors() -> None:
    kids = [Kid.make(90 + n) for n in range(3)]
    for location in (place("CV1 2GN"), place(ward="E05001219"),
                     place("CV1 2GN", premises={"category": "home", "ref": "UPRN1"})):
        docs = [_last_seen(kid, T0 + n * DAY, f"E{n}", location=location) for n, kid in enumerate(kids)]
        none_of(run(docs), "hotspot_emerging")
    wider = rules_from({"place_kinds": ["premises", "sector"]})
    docs = [_last_seen(kid, T0 + n * DAY, f"E{n}", location=place("CV1 2GN")) for n, kid in enumerate(kids)]
    assert only(run(docs, config=wider), "hotspot_emerging").subject == "sector:CV1 2"


def test_cmog_records_never_count_towards_multi_agency_concern() -> None:
    """EVENTS.md v1.1: the meeting's own records are not a new concern, whichever agency records them."""
    listed = event("cmog.listed", KID, T0 + 5 * DAY, {"reason": "partner_concern"}, agency="police")
    action = event("cmog.action.set", KID, T0 + 6 * DAY, {"action_ref": "ACT-7", "owner_agency": "housing",
                                                          "due_at": (T0 + 20 * DAY).isoformat(),
                                                          "kind": "safety_plan"}, agency="youth_justice")
    two = [cse(KID, T0, "none", agency="health"), cse(KID, T0 + DAY, "none", agency="education")]
    none_of(run([*two, listed, action]), "multi_agency_concern")
    # a third partner agency still counts: the rule is unchanged for partners' events
    only(run([*two, listed, cse(KID, T0 + 7 * DAY, "none", agency="police")]), "multi_agency_concern")
