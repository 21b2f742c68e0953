"""Where every output of the core goes, decided once: `route(output, config)`. The in-memory engine
(`sgi replay`) and the Faust agents both use it, and `CODECS` gives the one JSON form of what each
destination carries, so the shell only encodes, sends and decodes.

    Retire                 -> children    keyed by the retired (old) key
    ToChild                -> children    keyed by child_key
    Absorb                 -> children    keyed by into_key
    PlaceLink              -> placelinks  keyed by place_key (every link, for storage)
                           -> placestage  keyed by place_key (only the links the place rules judge)
    PlaceRetract           -> placestage  once per place key
    Alert                  -> alerts      keyed by alert_id
    Episode                -> episodes    keyed by "<child_key>:<episode_ref>"
    ChildSnapshot          -> childstates keyed by child_key
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import Discriminator, Tag, TypeAdapter

from models.derived import Alert, ChildSnapshot, Episode, Fact, PlaceLink
from streams.core.child import Absorb, ChildMessage, ChildOutput
from streams.core.config import RulesConfig
from streams.core.messages import PlaceRetract, Retire, Tick, ToChild
from streams.core.places import PlaceMessage, judged

Destination = Literal["resolve", "children", "placestage", "placelinks", "alerts", "episodes", "childstates"]
Output = ChildOutput | Retire
Routed = tuple[Destination, str, Any]  # (destination, key, message)


def route(output: Output, config: RulesConfig) -> list[Routed]:
    """The (destination, key, message) sends of one output of a step."""
    if isinstance(output, Retire):
        return [("children", output.old_key, output)]
    if isinstance(output, ToChild):
        return [("children", output.child_key, output)]
    if isinstance(output, Absorb):
        return [("children", output.into_key, output)]
    if isinstance(output, PlaceLink):
        stored: list[Routed] = [("placelinks", output.place_key, output)]
        return [("placestage", output.place_key, output), *stored] if judged(output, config) else stored
    if isinstance(output, PlaceRetract):
        return [("placestage", place_key, output) for place_key in output.place_keys]
    if isinstance(output, Alert):
        return [("alerts", output.alert_id, output)]
    if isinstance(output, Episode):
        return [("episodes", f"{output.child_key}:{output.episode_ref}", output)]
    return [("childstates", output.child_key, output)]


T = TypeVar("T")


class Codec(Generic[T]):
    """The JSON form of one destination's messages."""

    def __init__(self, kind: Any) -> None:
        self._adapter: TypeAdapter[T] = TypeAdapter(kind)

    def encode(self, message: T) -> bytes:
        return self._adapter.dump_json(message)

    def decode(self, raw: bytes | str) -> T:
        return self._adapter.validate_json(raw)


def _place_kind(value: Any) -> str:
    """A PlaceLink is the storage record (no `kind` field); the stage's own messages carry one."""
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return str(kind) if kind is not None else "link"


CHILD_CODEC: Codec[ChildMessage] = Codec(Annotated[ToChild | Retire | Absorb | Tick, Discriminator("kind")])
PLACE_CODEC: Codec[PlaceMessage] = Codec(
    Annotated[
        Annotated[PlaceLink, Tag("link")]
        | Annotated[PlaceRetract, Tag("place_retract")]
        | Annotated[Tick, Tag("tick")],
        Discriminator(_place_kind),
    ]
)
FACT_CODEC: Codec[Fact] = Codec(Fact)
CODECS: dict[Destination, Codec[Any]] = {
    "resolve": FACT_CODEC,
    "children": CHILD_CODEC,
    "placestage": PLACE_CODEC,
    "placelinks": Codec(PlaceLink),
    "alerts": Codec(Alert),
    "episodes": Codec(Episode),
    "childstates": Codec(ChildSnapshot),
}
