"""Correlation agents: identity -> child state -> places, and the live clock.

    events --forward--> resolve (1 partition)            # (first key, Fact)
    resolve --identity--> children                       # (canonical key, ToChild | Retire)
    children --child--> children                         # (surviving key, Absorb | ToChild)
                    --> placestage, placelinks           # (place key, PlaceLink | PlaceRetract)
                    --> alerts, episodes, childstates    # records
    placestage --place--> alerts                         # (alert id, Alert)
    timer --Tick--> every partition of children and placestage

Merges across partitions: identity runs on ONE partition, so every link is seen in order and the
canonical key (the smallest key of the child) is decided once. When a link joins two children,
the retired key's partition receives Retire (after every fact already routed to it, same key and
partition), hands its facts on as Absorb to the survivor's partition, and withdraws its alerts.
The child step is order-independent (state = the set of facts), so the survivor reaches the same
state whether the Absorb arrives before or after its other facts.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import faust

from models.derived import Alert, ChildSnapshot, Episode, Fact, PlaceLink
from streams.app import Topics
from streams.core.child import CHILD_MESSAGES, Absorb, ChildOutput, ChildState, step_child
from streams.core.config import RulesConfig
from streams.core.identity import IdentityState, resolve
from streams.core.messages import PlaceRetract, Tick, ToChild
from streams.core.places import PlaceMessage, PlaceState, judged, step_place

log = logging.getLogger(__name__)

TICK_KEY = b"__tick__"
TICK = Tick().model_dump_json().encode()


def decode_place_message(raw: bytes) -> PlaceMessage:
    kind = json.loads(raw).get("kind")
    if kind == "tick":
        return Tick()
    if kind == "place_retract":
        return PlaceRetract.model_validate_json(raw)
    return PlaceLink.model_validate_json(raw)


def _due_epoch(due: datetime | None) -> float | None:
    return due.timestamp() if due is not None else None


def register(app: faust.App, topics: Topics, rules: RulesConfig, tick_seconds: float = 30.0,
             stages: frozenset[str] = frozenset({"forward", "identity", "child", "place", "clock"})) -> None:
    """Registers the correlation agents; `stages` picks some of them (a benchmark times one alone)."""
    # identifier key -> parent key; on the single resolve partition (IdentityState reads it as a dict)
    parents = app.Table("identity-parents", default=None, key_type=str, partitions=1)
    # child key -> {"p": partition, "d": due epoch, "s": ChildState JSON}; likewise places.
    children = app.Table("child-states", default=None, key_type=str)
    places = app.Table("place-states", default=None, key_type=str)

    async def send_outputs(outputs: list[ChildOutput] | list[Alert]) -> None:
        for output in outputs:
            if isinstance(output, Alert):
                await topics.alerts.send(key=output.alert_id.encode(), value=output.model_dump_json().encode())
            elif isinstance(output, Episode):
                key = f"{output.child_key}:{output.episode_ref}".encode()
                await topics.episodes.send(key=key, value=output.model_dump_json().encode())
            elif isinstance(output, ChildSnapshot):
                await topics.child_states.send(key=output.child_key.encode(), value=output.model_dump_json().encode())
            elif isinstance(output, PlaceLink):
                value = output.model_dump_json().encode()
                if judged(output, rules):
                    await topics.place_stage.send(key=output.place_key.encode(), value=value)
                await topics.place_links.send(key=output.place_key.encode(), value=value)
            elif isinstance(output, PlaceRetract):
                for place_key in output.place_keys:
                    await topics.place_stage.send(key=place_key.encode(), value=output.model_dump_json().encode())
            elif isinstance(output, Absorb):
                await topics.children.send(key=output.into_key.encode(), value=output.model_dump_json().encode())
            elif isinstance(output, ToChild):
                await topics.children.send(key=output.child_key.encode(), value=output.model_dump_json().encode())

    async def forward(stream: faust.StreamT) -> None:
        async for key, value in stream.items():  # (first key, Fact) -> the one resolve partition
            await topics.resolve.send(key=key, value=value)

    async def identity(stream: faust.StreamT) -> None:
        state = IdentityState(parent=parents)
        async for value in stream:
            fact = Fact.model_validate_json(value)
            _, routed = resolve(state, fact)  # [Retire(old, into)..., ToChild(canonical, fact)]
            for message in routed:
                key = message.child_key if isinstance(message, ToChild) else message.old_key
                await topics.children.send(key=key.encode(), value=message.model_dump_json().encode())

    def keyed_stage(table: faust.Table, decode, load, step):  # type: ignore[no-untyped-def]
        """An agent body for a stage keyed like its table: read, fold, write back, send. A Tick on a
        partition steps every state of that partition whose next deadline or window edge is due."""

        async def step_key(key: str, message: object, partition: int, now: datetime) -> None:
            stored = table.get(key)
            state = load(stored["s"]) if stored else None
            state, outputs = step(state, message, now, rules)
            if state is None:
                table.pop(key, None)
            else:
                table[key] = {"p": partition, "d": _due_epoch(state.due_at), "s": state.to_json().decode()}
            await send_outputs(outputs)

        async def process(stream: faust.StreamT) -> None:
            async for event in stream.events():
                now = datetime.now(UTC)
                partition = event.message.partition
                message = decode(event.value)
                if isinstance(message, Tick):
                    keys = [k for k, v in table.items()
                            if v["p"] == partition and v["d"] is not None and v["d"] <= now.timestamp()]
                else:
                    keys = [event.key.decode()]
                for key in keys:
                    await step_key(key, message, partition, now)

        return process

    async def live_clock() -> None:
        """Wall time moves the clock: one Tick to every partition, so overdue rules fire."""
        for topic in (topics.children, topics.place_stage):
            for partition in range(app.conf.topic_partitions):
                await topic.send(key=TICK_KEY, value=TICK, partition=partition)

    if "forward" in stages:
        app.agent(topics.events, name="forward-to-identity")(forward)
    if "identity" in stages:
        app.agent(topics.resolve, name="identity")(identity)
    if "child" in stages:
        # (child key, ToChild | Retire | Absorb | Tick) -> records, place links, absorbs
        app.agent(topics.children, name="child-state")(
            keyed_stage(children, CHILD_MESSAGES.validate_json, ChildState.from_json, step_child))
    if "place" in stages:
        # (place key, PlaceLink | PlaceRetract | Tick) -> alerts
        app.agent(topics.place_stage, name="places")(
            keyed_stage(places, decode_place_message, PlaceState.from_json, step_place))
    if "clock" in stages:
        app.timer(interval=tick_seconds, on_leader=True)(live_clock)
