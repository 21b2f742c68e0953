"""The Faust agent tier, without Kafka: each agent runs in faust's `agent.test_context()` (an in-memory
channel in place of its topic, tables in memory), with the clock fixed and its sends recorded. Each
test proves an agent decodes its message, steps the core, writes its table back and sends exactly
what the core returned, routed by `routing.route` and encoded by `routing.CODECS`.

A keyed stage takes messages in batches, so `put` returns before the batch is handled: the tests wait
for the sends they expect (or, to prove nothing was sent, for the sends of a later message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import faust

from models.derived import Fact, PlaceLink
from settings import KafkaSettings, WorkerSettings
from streams.agents import correlate, ingest
from streams.app import Topics, build_app
from streams.core.child import ChildState, step_child
from streams.core.clock import TICK
from streams.core.config import load_rules
from streams.core.identity import IdentityState, resolve
from streams.core.messages import Tick, ToChild
from streams.core.places import step_place
from streams.core.routing import CHILD_CODEC, CODECS, FACT_CODEC, PLACE_CODEC, Routed, route
from tests.unit.builders import DAY, HOUR, T0, Kid, missing_ended, missing_started, place, secret, to_fact

RULES = load_rules()
NOW = T0 + HOUR
Sent = tuple[str, bytes, bytes]


class Recorder:
    """Stands in for the topics: what each agent would have sent, in order."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def correlate(self, destination: str, key: bytes, value: bytes) -> None:
        self.sent.append((destination, key, value))

    async def ingest(self, topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
        self.sent.append((topic.get_topic_name(), key or b"", value))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def expected(outputs: list[Any]) -> list[Sent]:
    routed: list[Routed] = [sent for output in outputs for sent in route(output, RULES)]
    return [(d, key.encode(), CODECS[d].encode(message)) for d, key, message in routed]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for the agent to get there (a batch waits up to BATCH_WAIT to fill); never a timing claim."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the agent never {what}")


def run_with_app(tmp_path: Path, body: Callable[[faust.App, Topics, Recorder, Clock], Coroutine[Any, Any, None]],
                 *, with_ingest: bool = False) -> None:
    async def main() -> None:
        kafka = KafkaSettings(bootstrap="127.0.0.1:9")  # never connected: test_context needs no broker
        app, topics = build_app(kafka, WorkerSettings(app_id=f"agent-test-{tmp_path.name}", data_dir=tmp_path))
        recorder, clock = Recorder(), Clock(NOW)
        correlate.register(app, topics, RULES, send=recorder.correlate, clock=clock)
        if with_ingest:
            ingest.register(app, topics, secret(), timedelta(days=8), send=recorder.ingest, clock=clock)
        app.finalize()
        await body(app, topics, recorder, clock)

    asyncio.run(main())


def agent(app: faust.App, name: str) -> Any:
    return next(candidate for candidate in app.agents.values() if candidate.name in (name, f"streams.agents.{name}"))


def fact_of(doc: dict[str, Any]) -> Fact:
    return to_fact(doc)


KID = Kid.make(501, birth_month="2011-04")
OTHER = Kid.make(502, birth_month="2012-08")


def test_forward_sends_each_fact_to_the_resolve_partition_unchanged(tmp_path: Path) -> None:
    fact = fact_of(missing_started(KID, T0, "E1"))

    async def body(app: faust.App, topics: Topics, recorder: Recorder, clock: Clock) -> None:
        async with agent(app, "forward-to-identity").test_context() as forward:
            await forward.put(FACT_CODEC.encode(fact), key=b"first-key")
            await until(lambda: len(recorder.sent) == 1, "forwarded the fact")
        assert recorder.sent == [("resolve", b"first-key", FACT_CODEC.encode(fact))]

    run_with_app(tmp_path, body)


def test_identity_sends_what_resolve_returns(tmp_path: Path) -> None:
    linked_kid = Kid((("nhs_number", KID.identifiers[0][1]), ("la_person_id", "LA-77")))
    first, second = fact_of(missing_started(KID, T0, "E1")), fact_of(missing_started(linked_kid, T0 + HOUR, "E2"))
    core = IdentityState()
    wanted = [*expected(resolve(core, first)[1]), *expected(resolve(core, second)[1])]

    async def body(app: faust.App, topics: Topics, recorder: Recorder, clock: Clock) -> None:
        async with agent(app, "identity").test_context() as identity:
            await identity.put(FACT_CODEC.encode(first), key=b"k")
            await identity.put(FACT_CODEC.encode(second), key=b"k")
            await until(lambda: len(recorder.sent) >= len(wanted), "sent the routed facts")
        assert recorder.sent == wanted
        assert all(destination == "children" for destination, _, _ in recorder.sent)

    run_with_app(tmp_path, body)


def test_child_stage_steps_writes_back_and_sends_what_the_core_returns(tmp_path: Path) -> None:
    start = ToChild(child_key=KID.key, fact=fact_of(missing_started(KID, T0, "E1", location=place("CV1 2GN"))))
    end = ToChild(child_key=KID.key, fact=fact_of(missing_ended(KID, T0 + 2 * HOUR, "E1")))
    # The core alone: the second step from the first state read back from JSON (a full recompute),
    # while the agent steps the state object it kept (the incremental path).
    first_state, first_outputs = step_child(None, start, NOW, RULES)
    assert first_state is not None
    later = T0 + 3 * HOUR
    second_state, second_outputs = step_child(ChildState.from_json(first_state.to_json()), end, later, RULES)
    assert second_state is not None and first_outputs and second_outputs

    async def body(app: faust.App, topics: Topics, recorder: Recorder, clock: Clock) -> None:
        table = app.tables["child-states"]
        async with agent(app, "child-state").test_context() as child:
            await child.put(CHILD_CODEC.encode(start), key=KID.key.encode(), partition=2)
            await until(lambda: len(recorder.sent) >= len(expected(first_outputs)), "sent the first step")
            assert recorder.sent == expected(first_outputs)
            assert table[KID.key] == {
                "partition": 2,
                "due_at": first_state.due_at.timestamp() if first_state.due_at else None,
                "state": first_state.to_json().decode(),
            }
            recorder.sent.clear()
            clock.now = later
            await child.put(CHILD_CODEC.encode(end), key=KID.key.encode(), partition=2)
            await until(lambda: len(recorder.sent) >= len(expected(second_outputs)), "sent the second step")
        assert recorder.sent == expected(second_outputs)
        assert table[KID.key]["state"] == second_state.to_json().decode()

    run_with_app(tmp_path, body)


def test_a_tick_steps_only_the_due_states_of_its_partition(tmp_path: Path) -> None:
    due_soon = ToChild(child_key=KID.key, fact=fact_of(missing_started(KID, T0, "E1")))  # long_missing at 24 h
    due_later = ToChild(child_key=OTHER.key, fact=fact_of(missing_started(OTHER, T0 + 20 * HOUR, "E9")))
    elsewhere = Kid.make(503)
    other_partition = ToChild(child_key=elsewhere.key, fact=fact_of(missing_started(elsewhere, T0, "E5")))
    at = T0 + 20 * HOUR
    soon_state, _ = step_child(None, due_soon, at, RULES)
    assert soon_state is not None and soon_state.due_at == T0 + 24 * HOUR + TICK
    tick_at = T0 + 25 * HOUR
    _, tick_outputs = step_child(soon_state, Tick(), tick_at, RULES)
    assert [o.rule for o in tick_outputs if getattr(o, "rule", None)] == ["long_missing"]

    async def body(app: faust.App, topics: Topics, recorder: Recorder, clock: Clock) -> None:
        clock.now = at
        async with agent(app, "child-state").test_context() as child:
            await child.put(CHILD_CODEC.encode(due_soon), key=KID.key.encode(), partition=0)
            await child.put(CHILD_CODEC.encode(due_later), key=OTHER.key.encode(), partition=0)
            await child.put(CHILD_CODEC.encode(other_partition), key=elsewhere.key.encode(), partition=1)
            await until(lambda: any(key == elsewhere.key.encode() for _, key, _ in recorder.sent), "stepped all")
            recorder.sent.clear()
            clock.now = tick_at
            await child.put(correlate.TICK, key=correlate.TICK_KEY, partition=0)
            await until(lambda: len(recorder.sent) >= len(expected(tick_outputs)), "sent the tick's changes")
        # Only the due child of partition 0 was stepped: the other one there is not due, the one on
        # partition 1 is due but got no tick.
        assert recorder.sent == expected(tick_outputs)

    run_with_app(tmp_path, body)


def test_place_stage_steps_links_and_sends_what_step_place_returns(tmp_path: Path) -> None:
    premises = place("CV1 2GN", premises={"category": "hotel", "name": "Hotel Nine"})
    links: list[PlaceLink] = []
    for number, kid in enumerate((KID, OTHER, Kid.make(504))):
        message = ToChild(child_key=kid.key, fact=fact_of(missing_started(kid, T0 + number * DAY, f"P{number}",
                                                                          location=premises)))
        _, outputs = step_child(None, message, T0 + number * DAY, RULES)
        links += [o for o in outputs if isinstance(o, PlaceLink) and o.place_kind == "premises"]
    assert len(links) == 3
    state = None
    wanted: list[Sent] = []
    for number, link in enumerate(links):
        state, alerts = step_place(state, link, T0 + number * DAY, RULES)
        wanted += expected(alerts)
    assert [destination for destination, _, _ in wanted] == ["alerts"]  # hotspot_emerging at the third child

    async def body(app: faust.App, topics: Topics, recorder: Recorder, clock: Clock) -> None:
        async with agent(app, "places").test_context() as places:
            for number, link in enumerate(links):
                clock.now = T0 + number * DAY
                await places.put(PLACE_CODEC.encode(link), key=link.place_key.encode(), partition=3)
                # one batch per link, so each is stepped at its own clock
                await until(lambda n=number, key=link.place_key: _links_in(app, key) == n + 1, "stored the link")
            await until(lambda: len(recorder.sent) >= len(wanted), "sent the alert")
        assert recorder.sent == wanted

    run_with_app(tmp_path, body)


def _links_in(app: faust.App, place_key: str) -> int:
    from streams.core.places import PlaceState

    stored = app.tables["place-states"].get(place_key)
    return len(PlaceState.from_json(stored["state"]).links) if stored is not None else 0


def test_ingest_sends_facts_dead_letters_and_drops_a_partners_duplicate(tmp_path: Path) -> None:
    import json

    good = missing_started(KID, T0, "E1")
    bad = {**good, "event_id": "not-a-uuid"}
    later = missing_started(KID, T0 + HOUR, "E2")

    async def body(app: faust.App, topics: Topics, recorder: Recorder, clock: Clock) -> None:
        async with agent(app, "ingest").test_context() as ingest_agent:
            await ingest_agent.put(json.dumps(good).encode(), key=b"a", partition=0)
            await ingest_agent.put(json.dumps(bad).encode(), key=b"a", partition=0)
            await ingest_agent.put(json.dumps(good).encode(), key=b"a", partition=0)  # a partner's duplicate
            ingest_agent.sent_offset = 0  # the first message again (offset 0): a redelivery after a crash
            await ingest_agent.put(json.dumps(good).encode(), key=b"a", partition=0)
            ingest_agent.sent_offset = 10
            await ingest_agent.put(json.dumps(later).encode(), key=b"a", partition=0)
            await until(lambda: len(recorder.sent) == 4, "sent the later fact")
        names = [name for name, _, _ in recorder.sent]
        events, dead = "safeguarding.events.v1", "safeguarding.deadletter.v1"
        assert names == [events, dead, events, events]  # the partner's duplicate was dropped
        ids = [FACT_CODEC.decode(value).event_id for name, _, value in recorder.sent if name == events]
        assert ids == [good["event_id"], good["event_id"], later["event_id"]]
        seen = app.tables["ingest-seen-event-ids"]
        assert set(seen[good["event_id"]]) == {"partition", "first_seen", "offset"}

    run_with_app(tmp_path, body, with_ingest=True)
