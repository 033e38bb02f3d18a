"""``FLOWLOOM_FAILPOINTS`` parsing: names, counts and the ``:kill`` mode; bad specs refused."""

from __future__ import annotations

import pytest

from flowloom.engine.failpoints import Failpoints
from flowloom.exceptions import ConfigurationError


def test_names_counts_and_modes_are_read() -> None:
    points = Failpoints.from_env(
        {"FLOWLOOM_FAILPOINTS": "after_effect_before_commit@3:kill, after_commit_before_release"}
    )
    assert points
    assert points._armed == {"after_effect_before_commit": 3, "after_commit_before_release": 1}
    assert points._killed == frozenset({"after_effect_before_commit"})


def test_nothing_armed_is_false_and_reaching_is_harmless() -> None:
    points = Failpoints.from_env({})
    assert not points
    points.reach("after_effect_before_commit")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nowhere", "unknown failpoint 'nowhere'"),
        ("after_effect_before_commit@x", "bad count"),
        ("after_effect_before_commit@2:boom", "unknown mode 'boom'"),
    ],
)
def test_bad_specs_are_refused_by_name(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Failpoints.from_env({"FLOWLOOM_FAILPOINTS": spec})
