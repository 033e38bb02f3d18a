"""``flowloom serve`` caps glibc's malloc arenas before it starts threads, unless the
environment sets them; the warm-up hands the free pages back when done."""

from __future__ import annotations

import os

import pytest

from flowloom.native_heap import SERVER_ARENAS, limit_arenas, release_free_pages


def test_the_environment_keeps_its_own_arena_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False


def test_a_cap_below_one_arena_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    with pytest.raises(ValueError, match="at least 1"):
        limit_arenas(0)


@pytest.mark.skipif(
    not hasattr(os, "confstr") or "CS_GNU_LIBC_VERSION" not in os.confstr_names,
    reason="glibc only",
)
def test_on_glibc_the_cap_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_arenas(SERVER_ARENAS) is True
    assert release_free_pages() is True


def test_the_warm_up_ends_by_releasing_free_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    from flowloom.nodes import warm

    calls: list[str] = []
    monkeypatch.setattr(warm, "ensure_imported", lambda name: calls.append(name))
    monkeypatch.setattr(warm, "release_free_pages", lambda: calls.append("release") or True)
    warm.warm_up()

    assert calls == [*warm.HEAVY_MODULES, "release"]
