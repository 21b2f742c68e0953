"""Messages between the core's steps. Each is a frozen pydantic model with a `kind` tag, so the
shell can put any of them on a topic as JSON and decode it with one discriminated union.

    identity  --ToChild/Retire-->  child (keyed by canonical child key)
    child     --Absorb-->          child (the surviving key)
    child     --PlaceLink/PlaceRetract--> place (keyed by place key)
    the clock --Tick-->            child, place
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from models.derived import Fact


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToChild(Message):
    """A fact for the child whose canonical key is `child_key` (identity.linked facts too)."""

    kind: Literal["to_child"] = "to_child"
    child_key: str
    fact: Fact


class Retire(Message):
    """`old_key` is no longer canonical: its child was merged into `into_key`'s."""

    kind: Literal["retire"] = "retire"
    old_key: str
    into_key: str


class Tick(Message):
    """The clock moved: re-evaluate deadlines and windows."""

    kind: Literal["tick"] = "tick"


class PlaceRetract(Message):
    """Forget every link from `child_key` to each of `place_keys` (that child key was retired)."""

    kind: Literal["place_retract"] = "place_retract"
    child_key: str
    place_keys: list[str]


Routed = ToChild | Retire
