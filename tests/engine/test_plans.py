"""The plan cache: nodes with equal configs share their parsed form; big plans are made with
the cyclic garbage collector paused, and it runs again afterwards; big runs are driven with its
full collections paused, and they run again afterwards."""

from __future__ import annotations

import gc

from enginekit import chain, registry

from flowloom.engine.plans import PlanCache, collector_paused, full_collections_paused
from flowloom.graph import Scope


def test_nodes_with_equal_configs_share_their_parsed_config() -> None:
    graph = chain(4)
    for index, amount in enumerate([2, 2, 3, 2]):
        graph["nodes"][index]["data"]["config"] = {"amount": amount}

    specs = PlanCache(registry()).prepare("wf", 1, graph, Scope.FULL, None).specs

    assert specs["n1"].config is specs["n2"].config is specs["n4"].config
    assert specs["n3"].config is not specs["n1"].config
    assert [specs[n].config.amount for n in ("n1", "n2", "n3", "n4")] == [2, 2, 3, 2]
    assert specs["n1"].definition.id == "n1"
    assert specs["n2"].definition.id == "n2"


def test_the_collector_is_paused_inside_nested_blocks_and_back_after_them() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "still inside the outer block"
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_full_collections_are_paused_inside_overlapping_blocks_and_back_after_them() -> None:
    before = gc.get_threshold()
    outer, inner = full_collections_paused(), full_collections_paused()
    outer.__enter__()
    paused = gc.get_threshold()
    assert paused[:2] == before[:2], "young collections go on"
    assert paused[2] > 1_000_000
    inner.__enter__()
    outer.__exit__(None, None, None)  # the block entered first may end first (two runs)
    assert gc.get_threshold() == paused, "still inside the other block"
    inner.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_full_collections_come_back_after_a_block_that_raised() -> None:
    before = gc.get_threshold()
    try:
        with full_collections_paused():
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
