"""routing.route sends each output where the topology says, once, and the codecs keep the records on the
topics the sink reads byte for byte what they were (model_dump_json), so the sink and ClickHouse need no change."""

from __future__ import annotations

from models.derived import Alert, ChildSnapshot, Episode, PlaceLink
from streams.core.child import Absorb, ChildState
from streams.core.config import load_rules
from streams.core.messages import PlaceRetract, Retire, Tick, ToChild
from streams.core.routing import CHILD_CODEC, CODECS, PLACE_CODEC, route
from tests.unit.builders import DAY, T0, Kid, missing_ended, missing_started, place, run, to_fact

RULES = load_rules()
KID = Kid.make(801)


def outputs() -> list[object]:
    hotel = place("CV1 2GN", premises={"category": "hotel", "name": "Larkspur Lodge"})
    engine = run([missing_started(KID, T0, "E1", location=hotel), missing_ended(KID, T0 + DAY, "E1", location=hotel)],
                 until=T0 + 5 * DAY)
    state = engine.children[KID.key]
    return [*state.alerts.values(), *state.episodes.values(), state.snapshot, *state.links.values()]


def test_the_records_the_sink_reads_keep_their_bytes() -> None:
    kinds = {Alert: "alerts", Episode: "episodes", ChildSnapshot: "childstates", PlaceLink: "placelinks"}
    seen = set()
    for record in outputs():
        destination = kinds[type(record)]  # type: ignore[index]
        seen.add(destination)
        assert CODECS[destination].encode(record) == record.model_dump_json().encode()  # type: ignore[union-attr]
        assert CODECS[destination].decode(CODECS[destination].encode(record)) == record
    assert seen == set(kinds.values())


def test_each_output_goes_where_the_topology_says() -> None:
    records = outputs()
    alert = next(r for r in records if isinstance(r, Alert))
    episode = next(r for r in records if isinstance(r, Episode))
    links = [r for r in records if isinstance(r, PlaceLink)]
    premises = next(link for link in links if link.place_kind == "premises")
    sector = next(link for link in links if link.place_kind == "sector")
    assert route(alert, RULES) == [("alerts", alert.alert_id, alert)]
    assert route(episode, RULES) == [("episodes", f"{episode.child_key}:{episode.episode_ref}", episode)]
    # Every link is stored; only those the place rules judge (premises by default) reach the stage.
    assert route(premises, RULES) == [("placestage", premises.place_key, premises),
                                      ("placelinks", premises.place_key, premises)]
    assert route(sector, RULES) == [("placelinks", sector.place_key, sector)]
    retract = PlaceRetract(child_key=KID.key, place_keys=["a", "b"])
    assert route(retract, RULES) == [("placestage", "a", retract), ("placestage", "b", retract)]
    retire = Retire(old_key="old", into_key="new")
    assert route(retire, RULES) == [("children", "old", retire)]
    absorb = Absorb(into_key="new", state=ChildState(key="old"))
    assert route(absorb, RULES) == [("children", "new", absorb)]
    fact = to_fact(missing_started(KID, T0, "E2"))
    forwarded = ToChild(child_key="new", fact=fact)
    assert route(forwarded, RULES) == [("children", "new", forwarded)]


def test_the_stage_codecs_decode_every_message_kind() -> None:
    fact = to_fact(missing_started(KID, T0, "E3"))
    for message in (ToChild(child_key="k", fact=fact), Retire(old_key="a", into_key="b"), Tick(),
                    Absorb(into_key="b", state=ChildState(key="a", facts={fact.event_id: fact}))):
        assert CHILD_CODEC.decode(CHILD_CODEC.encode(message)) == message
    link = next(r for r in outputs() if isinstance(r, PlaceLink))
    for place_message in (link, PlaceRetract(child_key="k", place_keys=["p"]), Tick()):
        assert PLACE_CODEC.decode(PLACE_CODEC.encode(place_message)) == place_message
