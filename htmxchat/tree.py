"""Messages as a tree: each message has a parent; the shown branch follows one child per level.

Pure functions over (id, parent id) pairs in creation order, so the store, the chat core and
the exports agree on what "the branch shown" is (docs/design.md, "Message tree").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

# The key of the first level in the choices (messages without a parent).
ROOT = ""


@dataclass(frozen=True, slots=True)
class Node:
    """One message's place in the tree."""

    id: str
    parent_id: str | None
    role: str = "user"


def children(nodes: Sequence[Node]) -> dict[str, list[str]]:
    """Child ids per parent id (ROOT for the first level), oldest first."""
    known = {n.id for n in nodes}
    result: dict[str, list[str]] = {}
    for n in nodes:
        parent = n.parent_id if n.parent_id in known else ROOT
        result.setdefault(parent or ROOT, []).append(n.id)
    return result


def shown_branch(nodes: Sequence[Node], choices: Mapping[str, str]) -> list[str]:
    """The ids of the branch shown: from the first level down, the chosen child at each
    level (the newest when there is no valid choice)."""
    kids = children(nodes)
    branch: list[str] = []
    parent = ROOT
    while parent in kids:
        options = kids[parent]
        chosen = choices.get(parent)
        parent = chosen if chosen in options else options[-1]
        branch.append(parent)
    return branch


def versions(nodes: Sequence[Node], only: Set[str] | None = None) -> dict[str, tuple[int, int]]:
    """For each message (of `only`, if given): its number among its siblings (1-based) and
    how many there are."""
    result: dict[str, tuple[int, int]] = {}
    for siblings in children(nodes).values():
        if only is not None and only.isdisjoint(siblings):
            continue
        for number, child in enumerate(siblings, 1):
            result[child] = (number, len(siblings))
    return result


def path_to(nodes: Sequence[Node], message_id: str) -> list[str]:
    """The ids from the first level down to `message_id` (empty when it is unknown)."""
    parents = {n.id: n.parent_id for n in nodes}
    path: list[str] = []
    current: str | None = message_id
    while current is not None and current in parents and current not in path:
        path.append(current)
        current = parents[current]
    return path[::-1]


def subtree(nodes: Sequence[Node], message_id: str) -> list[str]:
    """`message_id` and every message below it."""
    kids = children(nodes)
    found: list[str] = []
    stack = [message_id] if any(n.id == message_id for n in nodes) else []
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(kids.get(current, []))
    return found


def flat_parents(nodes: Sequence[Node]) -> list[str | None]:
    """Parents for a flat list (oldest first), as the schema migration assigns them: the
    previous message, except that consecutive answers are versions of one answer."""
    parents: list[str | None] = []
    for i, n in enumerate(nodes):
        if i == 0:
            parents.append(None)
        elif n.role == "assistant" and nodes[i - 1].role == "assistant":
            parents.append(parents[i - 1])
        else:
            parents.append(nodes[i - 1].id)
    return parents
