"""The simulated city: wards, planted hotspots, agencies' systems and the calibration of every rate.

Calibration (the defaults of `CityConfig`; `scale` shrinks the population and every rate for tests):
- Children: ONS mid-2014 population estimate for Coventry, 74,123 aged 0-17.
- Child protection (DfE children in need census 2014-15, Coventry, as calibrated for this project):
  about 578 children on a plan at any time; initial category EMO 47.8%, NEG 43.3%, SAB 5.2%, PHY 3.8%,
  MUL rare; age unborn 4%, 0-3 28.2%, 4-11 50.2%, 12-16 16.8%, 17+ 0.9%; about 15% of plans are a
  second or later plan. Siblings often go on plans together.
- Missing: DfE statutory guidance on children who run away or go missing from home or care (2014):
  a return interview within 72 hours of return; ACPO (2013) missing/absent definitions and risk grades.
  A minority of children (the "frequent" cohort, many looked after) account for over half the episodes.
- Domestic abuse: SafeLives DASH risk checklist (24 questions, 14+ = high risk, refer to MARAC);
  Operation Encompass: the school is told before 09:00 on the next school day.
- Places: Coventry's 18 wards (2004-2023 boundaries) with ONS-style codes E05001218..E05001235,
  postcode districts CV1-CV6, coordinates inside the city (52.37-52.45N, 1.43-1.58W).

Event rates are demo volumes, several times the real incidence, so that a 90-day run gives some
20-30 thousand events: enough for the dashboards, small enough for `make demo` on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from streams.core.config import load_rules

# --- the city ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ward:
    name: str
    code: str
    sectors: tuple[str, ...]  # postcode sectors, e.g. "CV6 5"
    lat: float
    lon: float
    weight: float  # relative share of the children known to services (deprivation)


WARDS = (
    Ward("Bablake", "E05001218", ("CV5 9", "CV6 2"), 52.435, -1.553, 0.8),
    Ward("Binley and Willenhall", "E05001219", ("CV3 2", "CV3 3"), 52.395, -1.455, 1.3),
    Ward("Cheylesmore", "E05001220", ("CV3 5", "CV3 6"), 52.390, -1.505, 0.8),
    Ward("Earlsdon", "E05001221", ("CV5 6", "CV1 3"), 52.398, -1.533, 0.6),
    Ward("Foleshill", "E05001222", ("CV6 5", "CV6 6", "CV6 7"), 52.428, -1.495, 1.5),
    Ward("Henley", "E05001223", ("CV2 1", "CV2 2"), 52.438, -1.458, 1.4),
    Ward("Holbrook", "E05001224", ("CV6 4", "CV6 6"), 52.438, -1.510, 1.0),
    Ward("Longford", "E05001225", ("CV6 6", "CV2 1"), 52.444, -1.478, 1.3),
    Ward("Lower Stoke", "E05001226", ("CV2 4", "CV3 1"), 52.405, -1.475, 1.0),
    Ward("Radford", "E05001227", ("CV6 1", "CV6 3"), 52.425, -1.523, 1.1),
    Ward("Sherbourne", "E05001228", ("CV1 3", "CV5 8"), 52.408, -1.540, 0.8),
    Ward("St Michael's", "E05001229", ("CV1 1", "CV1 2", "CV1 5"), 52.405, -1.505, 1.4),
    Ward("Upper Stoke", "E05001230", ("CV2 3", "CV2 4"), 52.418, -1.478, 1.1),
    Ward("Wainbody", "E05001231", ("CV4 7", "CV3 6"), 52.383, -1.545, 0.6),
    Ward("Westwood", "E05001232", ("CV4 8", "CV4 9"), 52.394, -1.568, 0.8),
    Ward("Whoberley", "E05001233", ("CV5 8", "CV5 6"), 52.410, -1.555, 0.8),
    Ward("Woodlands", "E05001234", ("CV5 7", "CV4 9"), 52.422, -1.565, 0.9),
    Ward("Wyken", "E05001235", ("CV2 3", "CV2 5"), 52.422, -1.455, 0.9),
)
WARD_BY_NAME = {ward.name: ward for ward in WARDS}
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters a postcode's inward code may use

# The planted hotspots: (category, fictional name, ward). The first `CityConfig.hotspots` are used.
HOTSPOTS = (
    ("hotel", "Larkspur Lodge Hotel (fictional)", "St Michael's"),
    ("takeaway", "Orbit Pizza & Grill (fictional)", "Foleshill"),
    ("taxi_firm", "Starline Cars (fictional)", "Upper Stoke"),
    ("licensed_premises", "The Copper Kettle Bar (fictional)", "Lower Stoke"),
    ("address_of_concern", None, "Radford"),
)
# How a child is linked to each: last seen there, found there, or named it in the return interview.
HOTSPOT_ROLES = {
    "hotel": (("seen",), ("found",), ("seen", "named")),
    "taxi_firm": (("named",), ("seen", "named"), ("found", "named")),
}
BACKGROUND_CATEGORIES = {
    "shop": 30, "park": 20, "transport_hub": 8, "takeaway": 12, "licensed_premises": 6,
    "school": 10, "address_of_concern": 2, "other": 10,
}
NAME_PARTS = (
    ("Corner", "Central", "Sunrise", "Meadow", "Kingfisher", "Elm", "Harbour", "Beacon", "Juniper", "Lantern"),
    {"shop": "Stores", "park": "Green", "transport_hub": "Bus Interchange", "takeaway": "Kitchen",
     "licensed_premises": "Tavern", "school": "Academy", "other": "Arcade"},
)


@dataclass(frozen=True)
class CityConfig:
    """Calibration for one city (see the module docstring for sources). Rates are per day at scale 1."""

    children: int = 74_123
    scale: float = 1.0
    cp_active: int = 578
    cp_categories: tuple[tuple[str, float], ...] = (
        ("EMO", 0.478), ("NEG", 0.433), ("SAB", 0.052), ("PHY", 0.038), ("MUL", 0.004),
    )
    # (label, youngest, oldest, share); unborn children have a birth month in the future.
    cp_age_bands: tuple[tuple[str, int, int, float], ...] = (
        ("unborn", -1, -1, 0.040), ("0-3", 0, 3, 0.282), ("4-11", 4, 11, 0.502),
        ("12-16", 12, 16, 0.168), ("17+", 17, 17, 0.009),
    )
    cp_repeat_share: float = 0.15
    cp_mean_days: float = 300.0
    cp_category_change_share: float = 0.12
    cp_sibling_share: float = 0.35  # a plan starts for one or two siblings on the same day
    missing_episodes_per_day: float = 55.0
    frequent_missing_children: int = 300
    frequent_missing_share: float = 0.55
    da_incidents_per_day: float = 30.0
    da_repeat_share: float = 0.25
    cse_assessments_per_day: float = 20.0
    fragmented_identity_share: float = 0.15  # agencies know the child by their own id only
    mash_link_share: float = 0.75  # of fragmented children, how many the MASH links in the period
    duplicate_share: float = 0.005  # exact re-sends of a message (same event_id)
    hotspots: int = 3
    la_code: str = "331"  # DfE LA code (UPN prefix)
    # Local time, as partner systems write it and as school days and the Encompass deadline fall: the
    # rules config's time zone (the shipped one unless given).
    zone: ZoneInfo = field(default_factory=lambda: load_rules().zone)


DEFAULT_CITY = CityConfig()

# The age calibration is of plans open at a time; starts are weighted so that the open plans match it.
# A plan is "unborn" only until the birth (then it counts as 0-3), and siblings join the lead child's plan.
# Factors measured over twelve seeds.
START_WEIGHTING = {"unborn": 6.0, "0-3": 0.55, "4-11": 1.05, "12-16": 1.05, "17+": 0.6}


SYSTEMS = {
    "police": "police-rms",
    "childrens_social_care": "cs-case-system",
    "health": "child-health-system",
    "education": "school-mis",
    "youth_justice": "yos-case-system",
    "housing": "housing-system",
    "voluntary_sector": "rhi-provider",
}
# The identifier scheme each agency keys its records by.
OWN_SCHEME = {
    "police": "police_person_id",
    "childrens_social_care": "la_person_id",
    "health": "nhs_number",
    "education": "upn",
    "youth_justice": "la_person_id",
    "housing": "la_person_id",
    "voluntary_sector": "la_person_id",
}
MISSING_HOURS = (2, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3, 4, 5, 6, 7, 7, 7, 6, 5, 3)
DA_HOURS = (5, 4, 3, 2, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 4, 5, 6, 7, 7, 7, 6)
MISSING_AGES = {8: 1, 9: 1, 10: 2, 11: 3, 12: 5, 13: 8, 14: 11, 15: 13, 16: 11, 17: 7}
CSE_AGES = {10: 2, 11: 3, 12: 5, 13: 8, 14: 10, 15: 11, 16: 9, 17: 6}
CSE_INDICATORS = (
    "going missing", "older boyfriend or girlfriend", "unexplained gifts or money", "substance misuse",
    "association with older peers", "sexual health concerns", "disengaged from education",
    "use of taxis", "phone with unknown contacts", "seen in hotels",
)
CSE_TOOLS = ("West Midlands CSE screening tool", "CSE risk assessment toolkit")
DISCLOSURES = (
    ("missing_with_peers", 30), ("substance_misuse", 18), ("abuse_at_home", 14), ("adults_of_concern", 10),
    ("cse", 8), ("cce", 6), ("county_lines", 5), ("self_harm", 6), ("bullying", 8), ("other", 10),
)
CP_END_REASONS = ("no longer at risk", "stepped down to child in need plan", "child became looked after",
                  "moved to another local authority", "reached 18")
DECLINE_REASONS = ("child declined", "parent declined", "child not available", None)


def stamp(moment: datetime, zone: ZoneInfo) -> str:
    """ISO 8601 with the offset a partner system in the city would write (GMT or BST in England)."""
    return moment.astimezone(zone).isoformat(timespec="seconds")
