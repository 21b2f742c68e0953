"""Identity resolution: which pseudonymous identifier keys name one child. Union-find, pure logic.

Identifiers that arrive together on one event, or in an identity.linked event, belong to one
child. The canonical key of a child is the smallest key (lexicographic) of everything linked to
it, so it does not depend on the order the links arrived in.

    resolve(state, fact) -> (state, [Retire(old, into)..., ToChild(canonical, fact)])

`IdentityState` is the one state in the core that `resolve` updates in place (and returns): a
union-find copied on every event would cost O(all children) per event. It only reads and writes
`parent[key]`, so the shell may back it with a table keyed by identifier key.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field

from models.derived import Fact
from streams.core.messages import Retire, Routed, ToChild


@dataclass
class IdentityState:
    """parent[key] -> a key of the same child closer to the root; a root is its own parent.

    Roots are always the minimum key of their component (unions point the larger root at the smaller).
    """

    parent: MutableMapping[str, str] = field(default_factory=dict)

    def find(self, key: str) -> str:
        """The canonical key for `key` (a key never seen is its own canonical key). Compresses paths."""
        root = key
        while (up := self.parent.get(root, root)) != root:
            root = up
        while (up := self.parent.get(key, key)) != root:
            self.parent[key] = root
            key = up
        return root

    def known(self, key: str) -> bool:
        return key in self.parent

    def to_json(self) -> bytes:
        return json.dumps(dict(self.parent), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes | str) -> IdentityState:
        parent = json.loads(raw)
        if not isinstance(parent, dict):
            raise ValueError("IdentityState JSON must be an object of key -> parent key")
        return cls(parent={str(k): str(v) for k, v in parent.items()})


def resolve(state: IdentityState, fact: Fact) -> tuple[IdentityState, list[Routed]]:
    """Link the fact's keys into one child; route the fact to that child's canonical key.

    When the fact joins children that were tracked apart, each root that stops being canonical
    gets a Retire (old -> new canonical key) before the fact, so its child state merges into the
    survivor's. Keys never seen before have no child state, so they are linked without a Retire.
    """
    keys = list(dict.fromkeys(fact.child_keys))
    if not keys:
        return state, []
    roots: set[str] = set()
    new_keys: set[str] = set()
    for key in keys:
        if state.known(key):
            roots.add(state.find(key))
        else:
            new_keys.add(key)
    canonical = min(roots | new_keys)
    routed: list[Routed] = [Retire(old_key=root, into_key=canonical) for root in sorted(roots - {canonical})]
    for key in sorted(roots | new_keys | set(keys)):
        state.parent[key] = canonical
    return state, [*routed, ToChild(child_key=canonical, fact=fact)]
