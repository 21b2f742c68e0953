"""Places: which keys a place is counted under, and the per-place step for the place rules. Pure.

A child is linked to a place by an event (last seen, found, named in a return interview). One
place can be counted at three levels, each its own key and state:

    premises  "premises:ref:<ref>" or "premises:<category>:<name>:<sector or ward>"
    sector    "sector:<postcode sector>"      e.g. "sector:CV1 2"
    ward      "ward:<ONS code>" or "ward-name:<name>"

    step_place(state, PlaceLink | PlaceRetract | Tick, now, config) -> (state, [Alert])   # keyed by place_key
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from models.derived import Alert, Place, PlaceLink
from streams.core.config import RulesConfig
from streams.core.messages import PlaceRetract, Tick
from streams.core.rules import place_rules, reconcile

PlaceKind = Literal["premises", "sector", "ward"]


def _plain(text: str) -> str:
    """Names as two agencies would agree on them: case and spacing ignored."""
    return " ".join(text.split()).casefold()


def place_keys(place: Place) -> list[tuple[str, PlaceKind]]:
    """Every key the place is counted under, most specific first.

    A premises needs a ref, or a name plus where it is (a postcode sector or a ward): a residential
    premises has no name (it is never kept) and without a ref it cannot be told from its neighbours,
    so it counts at sector and ward level only. lat/lon alone give no key (no shared grid yet).
    """
    keys: list[tuple[str, PlaceKind]] = []
    where = place.postcode_sector or place.ward_code or (_plain(place.ward_name) if place.ward_name else None)
    if place.premises_ref is not None:
        keys.append((f"premises:ref:{place.premises_ref}", "premises"))
    elif place.premises_category is not None and place.premises_name is not None and where is not None:
        keys.append(
            (f"premises:{place.premises_category.value}:{_plain(place.premises_name)}:{where}", "premises")
        )
    if place.postcode_sector is not None:
        keys.append((f"sector:{place.postcode_sector}", "sector"))
    if place.ward_code is not None:
        keys.append((f"ward:{place.ward_code}", "ward"))
    elif place.ward_name is not None:
        keys.append((f"ward-name:{_plain(place.ward_name)}", "ward"))
    return keys


def primary_place_key(place: Place | None) -> str | None:
    """The most specific key of a place (what an Episode shows as last seen / found)."""
    if place is None:
        return None
    keys = place_keys(place)
    return keys[0][0] if keys else None


def judged(link: PlaceLink, config: RulesConfig) -> bool:
    """Whether the place rules judge this link's place (RulesConfig.place_kinds and exclusions): only
    those links are routed to the place stage; every link is stored for the boards."""
    return link.place_kind in config.place_kinds and link.place.premises_category not in config.place_exclude_categories


def link_id(link: PlaceLink) -> str:
    return f"{link.event_id}|{link.child_key}"


class PlaceState(BaseModel):
    """One place: its links (one per event and child) within the window plus lateness, and the
    alerts it emitted that are not yet final. JSON round-trips (`to_json`/`from_json`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    place_key: str
    place_kind: PlaceKind
    place: Place
    links: dict[str, PlaceLink] = {}
    alerts: dict[str, Alert] = {}
    clock: AwareDatetime | None = None
    due_at: AwareDatetime | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes | str) -> PlaceState:
        return cls.model_validate_json(raw)


PlaceMessage = PlaceLink | PlaceRetract | Tick


def step_place(
    state: PlaceState | None, msg: PlaceMessage, now: datetime, config: RulesConfig
) -> tuple[PlaceState | None, list[Alert]]:
    """Fold one message into a place's state and re-evaluate its rules. Returns the new state (None
    once it holds nothing: no links and no live alerts) and the alerts that changed, `# (place_key, Alert)`."""
    if isinstance(msg, PlaceLink):
        if state is None:
            state = PlaceState(place_key=msg.place_key, place_kind=msg.place_kind, place=msg.place)
        key = link_id(msg)
        if state.links.get(key) == msg:
            # A duplicate changes nothing; it may be a redelivery after a crash that lost what the
            # step sent, so the place's alerts go out again (downstream keeps the latest by id).
            return state, list(state.alerts.values())
        state = state.model_copy(update={"links": {**state.links, key: msg}, "place": msg.place})
    elif isinstance(msg, PlaceRetract):
        if state is None:
            return None, []
        links = {key: link for key, link in state.links.items() if link.child_key != msg.child_key}
        if len(links) == len(state.links):
            return state, []
        state = state.model_copy(update={"links": links})
    elif state is None:
        return None, []
    return _evaluate(state, now, config)


def _evaluate(state: PlaceState, now: datetime, config: RulesConfig) -> tuple[PlaceState | None, list[Alert]]:
    horizon = now - config.place_horizon
    evaluation = place_rules(list(state.links.values()), now, config)
    alerts, changed = reconcile("place", state.place_key, state.alerts, evaluation.wanted, now, horizon)
    needed = {event_id for alert in alerts.values() for event_id in alert.evidence}
    kept = {key: link for key, link in state.links.items() if link.occurred_at >= horizon or link.event_id in needed}
    if not kept and not alerts:
        return None, changed
    # A tick is needed only when a stretch could end or a future-dated link comes due; a link
    # leaving the window of a place whose count is below threshold changes nothing.
    future = [link.occurred_at for link in kept.values() if link.occurred_at > now]
    due = min([*future, *([evaluation.next_change] if evaluation.next_change else [])], default=None)
    return state.model_copy(update={"links": kept, "alerts": alerts, "clock": now, "due_at": due}), changed
