"""The core's steps wired together in memory, routing every output exactly as the Kafka topology
does. Used by `sgi replay` and the tests; the Faust shell does the same routing through topics.

    fact --resolve--> Retire(old) / ToChild(canonical)      # (child_key, message) -> children
    child --step_child--> Alert, Episode, ChildSnapshot      # records
                          PlaceLink, PlaceRetract            # (place_key, message) -> places
                          Absorb, ToChild                    # (child_key, message) -> children
    place --step_place--> Alert                              # records

Messages are handled first in, first out, each by the state keyed like it (STYLE principle 3).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from models.derived import Alert, ChildSnapshot, Episode, Fact
from streams.core.child import ChildMessage, ChildState, step_child
from streams.core.config import RulesConfig
from streams.core.identity import IdentityState, resolve
from streams.core.messages import Tick
from streams.core.places import PlaceMessage, PlaceState, step_place
from streams.core.routing import CHILD_CODEC, Output, route

Record = Alert | Episode | ChildSnapshot
Destination = Literal["child", "place"]
Addressed = tuple[Literal["child"], str, ChildMessage] | tuple[Literal["place"], str, PlaceMessage]


class IncrementalMismatch(AssertionError):
    """The checking mode found an incremental step that differs from the full recompute."""


class Engine:
    """Identity, children and places in dicts; `process` one fact, `advance` the clock.

    `alerts` holds the latest version of each alert by id (withdrawn ones included, so a caller can
    see them go); `episodes` by (child_key, episode_ref); `snapshots` by child key. With
    `roundtrip=True` every state and child message goes through its JSON form after each step, as it
    would through a Faust table and a topic (the tests use it to prove the states serialise).

    With `check=True` (the checking mode, for tests) every child step is also run on a copy of the
    state read back from JSON, which carries no cached view, so the step folds the whole history
    again; any difference in the new state or the outputs raises IncrementalMismatch.
    """

    def __init__(self, config: RulesConfig, *, roundtrip: bool = False, check: bool = False) -> None:
        self.config = config
        self.roundtrip = roundtrip
        self.check = check
        self.identity = IdentityState()
        self.children: dict[str, ChildState] = {}
        self.places: dict[str, PlaceState] = {}
        self._alerts: dict[str, Alert] = {}
        self.episodes: dict[tuple[str, str], Episode] = {}
        self.snapshots: dict[str, ChildSnapshot] = {}
        self._due: list[tuple[datetime, Destination, str]] = []  # heap; stale entries skipped on pop

    @property
    def alerts(self) -> dict[str, Alert]:
        return self._alerts

    def current_alerts(self) -> list[Alert]:
        """Open and resolved alerts (withdrawn ones are never shown), by (opened_at, alert_id)."""
        shown = [alert for alert in self._alerts.values() if alert.status != "withdrawn"]
        return sorted(shown, key=lambda alert: (alert.opened_at, alert.alert_id))

    def process(self, fact: Fact, now: datetime) -> list[Record]:
        """Resolve the fact's identity and route it (and everything it causes) at clock `now`.

        Everything due by `now` is ticked first, so a state has seen the clock reach `now` before
        it sees news from `now` (a merge cannot overtake a deadline or a window edge it came after).
        """
        records = self.advance(now)
        _, routed = resolve(self.identity, fact)
        first: deque[Addressed] = deque()
        for message in routed:
            self._route(message, first, records)
        return records + self._drain(first, now)

    def advance(self, now: datetime) -> list[Record]:
        """Tick every child and place whose next deadline or window edge is due by `now`."""
        records: list[Record] = []
        while self._due and self._due[0][0] <= now:
            due, destination, key = heapq.heappop(self._due)
            state: ChildState | PlaceState | None
            state = self.children.get(key) if destination == "child" else self.places.get(key)
            if state is None or state.due_at != due:
                continue  # superseded by a later step
            if destination == "child":
                records += self._drain([("child", key, Tick())], now)
            else:
                records += self._drain([("place", key, Tick())], now)
        return records

    def _drain(self, initial: Iterable[Addressed], now: datetime) -> list[Record]:
        queue: deque[Addressed] = deque(initial)
        records: list[Record] = []
        while queue:
            addressed = queue.popleft()
            if addressed[0] == "child":
                _, key, child_message = addressed
                if self.roundtrip:
                    child_message = CHILD_CODEC.decode(CHILD_CODEC.encode(child_message))
                before = self.children.get(key)
                if self.check:
                    fresh = ChildState.from_json(before.to_json()) if before is not None else None
                    expected = step_child(fresh, child_message, now, self.config)
                child_state, outputs = step_child(before, child_message, now, self.config)
                if self.check and expected != (child_state, outputs):
                    raise IncrementalMismatch(key, child_message, expected, (child_state, outputs))
                self._store_child(key, child_state)
                for output in outputs:
                    self._route(output, queue, records)
            else:
                _, key, place_message = addressed
                place_state, alerts = step_place(self.places.get(key), place_message, now, self.config)
                self._store_place(key, place_state)
                for alert in alerts:
                    self._route(alert, queue, records)
        return records

    def _route(self, output: Output, queue: deque[Addressed], records: list[Record]) -> None:
        """Follow routing.route, as the Faust shell does through topics; the storage-only copy of a
        place link (placelinks) has no stage to reach here."""
        for destination, key, message in route(output, self.config):
            if destination == "children":
                queue.append(("child", key, message))
            elif destination == "placestage":
                queue.append(("place", key, message))
            elif destination == "alerts":
                records.append(message)
                self._alerts[key] = message
            elif destination == "episodes":
                records.append(message)
                self.episodes[(message.child_key, message.episode_ref)] = message
            elif destination == "childstates":
                records.append(message)
                self.snapshots[key] = message

    def _store_child(self, key: str, state: ChildState | None) -> None:
        if state is None:
            self.children.pop(key, None)
            return
        if self.roundtrip:
            state = ChildState.from_json(state.to_json())
        self.children[key] = state
        if state.due_at is not None:
            heapq.heappush(self._due, (state.due_at, "child", key))

    def _store_place(self, key: str, state: PlaceState | None) -> None:
        if state is None:
            self.places.pop(key, None)
            return
        if self.roundtrip:
            state = PlaceState.from_json(state.to_json())
        self.places[key] = state
        if state.due_at is not None:
            heapq.heappush(self._due, (state.due_at, "place", key))
