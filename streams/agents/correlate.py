"""Correlation agents: identity -> child state -> places, and the live clock.

    events --forward--> resolve (1 partition)            # (first key, Fact)
    resolve --identity--> children                       # (canonical key, ToChild | Retire)
    children --child--> children                         # (surviving key, Absorb | ToChild)
                    --> placestage, placelinks           # (place key, PlaceLink | PlaceRetract)
                    --> alerts, episodes, childstates    # records
    placestage --place--> alerts                         # (alert id, Alert)
    timer --Tick--> every partition of children and placestage

Agents only decode (routing.CODECS), step (the pure core), write the state back and send what
`routing.route` says. Merges across partitions: identity runs on ONE partition, so every link is seen
in order and the canonical key (the smallest key of the child) is decided once; see the README.

The keyed stages (child, place) take messages in batches. Each keeps, besides its table, the state
objects it stepped last (so a child's cached view and rule results survive from one message to the
next instead of being rebuilt from JSON) and, per partition, a heap of due times, so a Tick steps only
the states that are due instead of scanning the table.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar, cast

import faust

from streams.app import Topics
from streams.core.child import ChildState, step_child
from streams.core.config import RulesConfig
from streams.core.identity import IdentityState, resolve
from streams.core.messages import Tick
from streams.core.places import PlaceState, step_place
from streams.core.routing import CHILD_CODEC, CODECS, FACT_CODEC, PLACE_CODEC, Codec, Destination, Routed, route

log = logging.getLogger(__name__)

TICK_KEY = b"__tick__"
TICK = CHILD_CODEC.encode(Tick())
BATCH_SIZE = 500  # messages handled per batch at most
BATCH_WAIT = 0.05  # seconds a batch waits to fill up
ALL_STAGES = frozenset({"forward", "identity", "child", "place", "clock"})

# (destination, key bytes, value bytes) -> sent; the default sends to the destination's topic.
Send = Callable[[Destination, bytes, bytes], Awaitable[None]]


class State(Protocol):
    @property
    def due_at(self) -> datetime | None: ...

    def to_json(self) -> bytes: ...


S = TypeVar("S", bound=State)
M = TypeVar("M")
Step = Callable[[S | None, Any, datetime, RulesConfig], tuple[S | None, list[Any]]]


def topic_for(topics: Topics) -> dict[Destination, faust.TopicT]:
    return {
        "resolve": topics.resolve,
        "children": topics.children,
        "placestage": topics.place_stage,
        "placelinks": topics.place_links,
        "alerts": topics.alerts,
        "episodes": topics.episodes,
        "childstates": topics.child_states,
    }


def encode(sends: list[Routed]) -> list[tuple[Destination, bytes, bytes]]:
    return [(destination, key.encode(), CODECS[destination].encode(message)) for destination, key, message in sends]


@dataclass
class KeyedStage(Generic[S]):
    """A stage keyed like its table (STYLE 3): read, step, write back (STYLE 4), route.

    Table value per key: {"partition": source partition (the changelog partition it belongs to),
    "due_at": epoch seconds of its next due item or None, "state": the state's JSON}.
    """

    table: Any  # faust.Table
    load: Callable[[bytes | str], S]
    step: Step[S]
    rules: RulesConfig
    # key -> (the JSON stored in the table, the state object it came from or was written as)
    live: dict[str, tuple[str, S]] = field(default_factory=dict)
    # partition -> heap of (due epoch, key); an entry is checked against the table when popped
    due: dict[int, list[tuple[float, str]]] = field(default_factory=dict)

    def state(self, key: str) -> S | None:
        stored = self.table.get(key)
        if stored is None:
            return None
        cached = self.live.get(key)
        if cached is not None and cached[0] == stored["state"]:
            return cached[1]
        state = self.load(stored["state"])
        self.live[key] = (stored["state"], state)
        return state

    def write(self, key: str, partition: int, state: S | None) -> None:
        """Write back to the table and its changelog partition (the partition of the message that
        stepped it: a batch holds messages of several partitions)."""
        if state is None:
            self.live.pop(key, None)
            if key in self.table:
                self.table.data.pop(key, None)
                self.table.send_changelog(partition, key, None, value_serializer="raw")
            return
        text = state.to_json().decode("utf-8")
        due = state.due_at.timestamp() if state.due_at is not None else None
        value = {"partition": partition, "due_at": due, "state": text}
        self.table.data[key] = value
        self.table.send_changelog(partition, key, value)
        self.live[key] = (text, state)
        if due is not None and partition in self.due:
            heapq.heappush(self.due[partition], (due, key))

    def due_keys(self, partition: int, now: datetime) -> list[str]:
        """The keys of this partition whose next due item has come, each once. The partition's heap is
        built from the table the first time (and after a rebalance); stale entries are skipped."""
        heap = self.due.get(partition)
        if heap is None:
            heap = [
                (value["due_at"], key)
                for key, value in self.table.items()
                if value["partition"] == partition and value["due_at"] is not None
            ]
            heapq.heapify(heap)
            self.due[partition] = heap
        moment = now.timestamp()
        keys: dict[str, None] = {}
        while heap and heap[0][0] <= moment:
            due, key = heapq.heappop(heap)
            stored = self.table.get(key)
            if stored is not None and stored["partition"] == partition and stored["due_at"] == due:
                keys[key] = None
        return list(keys)

    def handle(self, key: str, partition: int, message: Any, now: datetime) -> list[Routed]:
        state, outputs = self.step(self.state(key), message, now, self.rules)
        self.write(key, partition, state)
        return [sent for output in outputs for sent in route(output, self.rules)]

    def handle_batch(self, events: list[tuple[bytes | None, bytes, int]], codec: Codec[Any],
                     now: datetime) -> list[Routed]:
        """(key, value, partition) of each message, in order -> what to send."""
        sends: list[Routed] = []
        for raw_key, value, partition in events:
            message = codec.decode(value)
            if isinstance(message, Tick):
                for key in self.due_keys(partition, now):
                    sends += self.handle(key, partition, message, now)
            elif raw_key is not None:
                sends += self.handle(raw_key.decode(), partition, message, now)
        return sends


def wall_clock() -> datetime:
    return datetime.now(UTC)


def register(app: faust.App, topics: Topics, rules: RulesConfig, tick_seconds: float = 30.0,
             stages: frozenset[str] = ALL_STAGES, send: Send | None = None,
             clock: Callable[[], datetime] = wall_clock) -> None:
    """Registers the correlation agents; `stages` picks some of them (a benchmark times one alone).
    `send` replaces sending to the topics and `clock` the wall clock (the agent tests use both)."""
    # identifier key -> parent key; on the single resolve partition (IdentityState reads it as a dict)
    parents = app.Table("identity-parents", default=None, key_type=str, partitions=1)
    children = KeyedStage[ChildState](app.Table("child-states", default=None, key_type=str),
                                      ChildState.from_json, step_child, rules)
    places = KeyedStage[PlaceState](app.Table("place-states", default=None, key_type=str),
                                    PlaceState.from_json, step_place, rules)
    outputs = topic_for(topics)

    async def to_topic(destination: Destination, key: bytes, value: bytes) -> None:
        await outputs[destination].send(key=key, value=value)

    deliver: Send = send if send is not None else to_topic

    async def send_all(sends: list[Routed]) -> None:
        for destination, key, value in encode(sends):
            await deliver(destination, key, value)

    async def forward(stream: faust.StreamT[Any]) -> None:
        async for key, value in stream.items():  # (first key, Fact) -> the one resolve partition
            await deliver("resolve", key, value)

    async def identity(stream: faust.StreamT[Any]) -> None:
        state = IdentityState(parent=parents)
        async for value in stream:
            _, routed = resolve(state, FACT_CODEC.decode(value))  # [Retire(old, into)..., ToChild(canonical, fact)]
            await send_all([sent for message in routed for sent in route(message, rules)])

    def keyed(stage: KeyedStage[Any], codec: Codec[Any]) -> Callable[[faust.StreamT[Any]], Awaitable[None]]:
        async def process(stream: faust.StreamT[Any]) -> None:
            batches = cast(faust.Stream[Any], stream).take_events  # StreamT does not declare it
            async for batch in batches(BATCH_SIZE, within=BATCH_WAIT):
                events = [(event.key, event.value, event.message.partition) for event in batch]
                await send_all(stage.handle_batch(events, codec, clock()))

        return process

    async def live_clock() -> None:
        """Wall time moves the clock: one Tick to every partition, so overdue rules fire."""
        for topic in (topics.children, topics.place_stage):
            for partition in range(app.conf.topic_partitions):
                await topic.send(key=TICK_KEY, value=TICK, partition=partition)

    async def forget_indexes(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """After a rebalance the partitions held may differ: due heaps are rebuilt from the tables."""
        for stage in (children, places):
            stage.due.clear()
            stage.live.clear()

    app.on_rebalance_complete.connect(forget_indexes)
    if "forward" in stages:
        app.agent(topics.events, name="forward-to-identity")(forward)
    if "identity" in stages:
        app.agent(topics.resolve, name="identity")(identity)
    if "child" in stages:
        # (child key, ToChild | Retire | Absorb | Tick) -> records, place links, absorbs
        app.agent(topics.children, name="child-state")(keyed(children, CHILD_CODEC))
    if "place" in stages:
        # (place key, PlaceLink | PlaceRetract | Tick) -> alerts
        app.agent(topics.place_stage, name="places")(keyed(places, PLACE_CODEC))
    if "clock" in stages:
        app.timer(interval=tick_seconds, on_leader=True)(live_clock)
