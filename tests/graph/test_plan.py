"""The plan: Kahn's order, parents and children, counts, and the three scopes."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flowloom.exceptions import ValidationFailed
from flowloom.graph import (
    Scope,
    WorkflowDefinition,
    build_plan,
    find_cycles,
    parse_definition,
    topological_order,
)


def graph(edges: list[tuple[str, str]], nodes: list[str] | None = None) -> WorkflowDefinition:
    """A definition with one node per name and an edge per pair (ports do not matter here)."""
    names = nodes if nodes is not None else list(dict.fromkeys(n for pair in edges for n in pair))
    return parse_definition(
        {
            "nodes": [{"id": name, "type": "text.value"} for name in names],
            "edges": [
                {
                    "id": f"e{index}",
                    "source": source,
                    "sourceHandle": "out",
                    "target": target,
                    "targetHandle": "in",
                }
                for index, (source, target) in enumerate(edges)
            ],
        }
    )


def chain(length: int) -> WorkflowDefinition:
    names = [f"n{index}" for index in range(length)]
    return graph(list(itertools.pairwise(names)), names)


#        a
#       / \
#      b   c      d (alone)
#       \ /
#        e -> f
DIAMOND = graph(
    [("a", "b"), ("a", "c"), ("b", "e"), ("c", "e"), ("e", "f")], ["a", "b", "c", "d", "e", "f"]
)


def test_full_plan_orders_parents_first_and_breaks_ties_by_definition_order() -> None:
    plan = build_plan(DIAMOND)

    assert plan.order == ("a", "d", "b", "c", "e", "f")
    assert plan.roots() == ["a", "d"]
    assert plan.parents["e"] == ("b", "c")
    assert plan.children["a"] == ("b", "c")
    assert plan.unfinished_parents() == {"a": 0, "b": 1, "c": 1, "d": 0, "e": 2, "f": 1}
    assert plan.outside_parents == {}


def test_unfinished_parents_is_a_fresh_copy_each_time() -> None:
    plan = build_plan(DIAMOND)
    counts = plan.unfinished_parents()
    counts["e"] -= 1

    assert plan.unfinished_parents()["e"] == 2


def test_two_edges_between_the_same_nodes_make_one_parent_but_both_are_incoming() -> None:
    plan = build_plan(graph([("a", "b"), ("a", "b")]))

    assert plan.parents["b"] == ("a",)
    assert plan.unfinished_parents()["b"] == 1
    assert [edge.id for edge in plan.incoming["b"]] == ["e0", "e1"]


def test_incoming_edges_keep_definition_order_for_list_ports() -> None:
    plan = build_plan(graph([("z", "m"), ("a", "m"), ("k", "m")]))

    assert [edge.source for edge in plan.incoming["m"]] == ["z", "a", "k"]


def test_node_scope_is_just_the_target_with_its_parents_outside() -> None:
    plan = build_plan(DIAMOND, Scope.NODE, "e")

    assert plan.order == ("e",)
    assert plan.parents == {"e": ()}
    assert plan.outside_parents == {"e": ("b", "c")}
    assert plan.roots() == ["e"]
    assert [edge.source for edge in plan.incoming["e"]] == ["b", "c"]


def test_upstream_scope_is_the_target_and_its_ancestors_only() -> None:
    plan = build_plan(DIAMOND, Scope.UPSTREAM, "e")

    assert plan.order == ("a", "b", "c", "e")
    assert plan.nodes == {"a", "b", "c", "e"}
    assert plan.children["c"] == ("e",)
    assert "f" not in plan.children["e"]
    assert plan.outside_parents == {}


def test_scoped_runs_need_an_existing_target() -> None:
    with pytest.raises(ValidationFailed, match="needs a target"):
        build_plan(DIAMOND, Scope.NODE)
    with pytest.raises(ValidationFailed, match="'zz' does not exist"):
        build_plan(DIAMOND, Scope.UPSTREAM, "zz")


def test_a_graph_with_a_cycle_cannot_be_planned() -> None:
    with pytest.raises(ValidationFailed) as caught:
        build_plan(graph([("start", "a"), ("a", "b"), ("b", "a")]))

    assert [p.message for p in caught.value.problems] == ["cycle: a -> b -> a"]


def test_dangling_edges_and_duplicate_ids_cannot_be_planned() -> None:
    definition = parse_definition(
        {
            "nodes": [{"id": "a", "type": "t.x"}, {"id": "a", "type": "t.x"}],
            "edges": [
                {"id": "e", "source": "a", "sourceHandle": "o", "target": "b", "targetHandle": "i"}
            ],
        }
    )

    with pytest.raises(ValidationFailed) as caught:
        build_plan(definition)

    assert sorted(p.message for p in caught.value.problems) == [
        "duplicate node id",
        "edge 'e': target node 'b' does not exist",
    ]


def test_ten_thousand_node_chain_plans_in_every_scope() -> None:
    # The plan is O(V+E) (no recursion, no quadratic scans): 10k nodes take milliseconds.
    definition = chain(10_000)
    names = tuple(node.id for node in definition.nodes)

    full = build_plan(definition)
    upstream = build_plan(definition, Scope.UPSTREAM, "n4999")
    single = build_plan(definition, Scope.NODE, "n9999")

    assert full.order == names
    assert full.roots() == ["n0"]
    assert upstream.order == names[:5000]
    assert single.order == ("n9999",)
    assert single.outside_parents == {"n9999": ("n9998",)}


def test_ten_thousand_node_ring_names_its_cycle_without_recursion() -> None:
    names = [f"n{index}" for index in range(10_000)]
    pairs = [*itertools.pairwise(names), (names[-1], names[0])]

    order, leftover = topological_order(names, pairs)
    cycles = find_cycles(names, pairs)

    assert order == []
    assert leftover == names
    assert cycles == [[*names, "n0"]]


def test_find_cycles_reports_one_cycle_per_component() -> None:
    pairs: list[tuple[str, str]] = [("a", "b"), ("b", "a"), ("b", "c"), ("d", "d"), ("c", "e")]

    assert find_cycles(["a", "b", "c", "d", "e"], pairs) == [["a", "b", "a"], ["d", "d"]]


def test_topological_order_ignores_edges_to_unknown_nodes() -> None:
    pairs: list[Any] = [("a", "b"), ("ghost", "b"), ("b", "ghost")]

    assert topological_order(["a", "b"], pairs) == (["a", "b"], [])


def test_pinned_full_run_covers_what_follows_the_pins_and_what_that_needs() -> None:
    # b pinned: e needs c (not pinned), so c and a run; d (alone) does not.
    plan = build_plan(DIAMOND, Scope.FULL, pinned={"b"})
    assert plan.order == ("a", "c", "e", "f")
    assert plan.outside_parents == {"e": ("b",)}
    assert plan.pinned == frozenset({"b"})
    assert plan.roots() == ["a"]


def test_pinned_upstream_run_stops_at_pins_and_a_node_run_is_unchanged() -> None:
    assert build_plan(DIAMOND, Scope.UPSTREAM, "f", pinned={"e"}).order == ("f",)
    upstream = build_plan(DIAMOND, Scope.UPSTREAM, "e", pinned={"b", "e"})
    assert upstream.order == ("a", "c", "e")
    assert upstream.outside_parents == {"e": ("b",)}
    assert build_plan(DIAMOND, Scope.NODE, "e", pinned={"b"}).order == ("e",)


def test_pinned_full_run_needs_a_pin_with_something_after_it() -> None:
    with pytest.raises(ValidationFailed, match="no node of this version has pinned outputs"):
        build_plan(DIAMOND, Scope.FULL, pinned=set())
    with pytest.raises(ValidationFailed, match="nothing follows the pinned nodes") as refused:
        build_plan(DIAMOND, Scope.FULL, pinned={"f", "d"})
    assert [p.node_id for p in refused.value.problems] == ["d", "f"]
