"""Settings: the defaults, database URLs from the environment, and the generated secret key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from flowloom.exceptions import ConfigurationError
from flowloom.settings import Settings, normalize_database_url


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No FLOWLOOM_ variable from the outside, and a fresh working directory."""
    for name in list(os.environ):
        if name.startswith("FLOWLOOM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_keep_everything_in_dot_flowloom(clean_environment: Path) -> None:
    settings = Settings()

    assert settings.data_dir == Path(".flowloom")
    assert settings.database_url is None
    assert settings.is_sqlite
    expected = (clean_environment / ".flowloom" / "flowloom.db").resolve()
    assert settings.resolved_database_url == f"sqlite+flowloom:///{expected}"
    assert settings.blob_dir == Path(".flowloom") / "blobs"


def test_data_dir_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLOWLOOM_DATA_DIR", str(tmp_path / "elsewhere"))
    settings = Settings()

    assert settings.resolved_database_url.endswith(f"{tmp_path}/elsewhere/flowloom.db")
    settings.ensure_data_dir()
    assert (tmp_path / "elsewhere" / "blobs").is_dir()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://flow@db.internal:5432/flow",
            "postgresql+asyncpg://flow@db.internal:5432/flow",
        ),
        ("postgres://flow:pw@localhost/flow", "postgresql+asyncpg://flow:pw@localhost/flow"),
        ("postgresql+asyncpg://flow@localhost/flow", "postgresql+asyncpg://flow@localhost/flow"),
        (
            "sqlite:////var/lib/flowloom/flowloom.db",
            "sqlite+flowloom:////var/lib/flowloom/flowloom.db",
        ),
        ("sqlite:///relative.db", "sqlite+flowloom:///relative.db"),
    ],
)
def test_database_urls_get_their_async_driver(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("FLOWLOOM_DATABASE_URL", given)
    settings = Settings()

    assert settings.database_url == expected
    assert settings.resolved_database_url == expected
    assert settings.is_sqlite == expected.startswith("sqlite")


def test_an_unsupported_database_is_refused_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWLOOM_DATABASE_URL", "mysql://flow@localhost/flow")
    with pytest.raises(ValidationError, match=r"scheme 'mysql' is not supported; use sqlite"):
        Settings()
    with pytest.raises(ConfigurationError, match="'mysql' is not supported"):
        normalize_database_url("mysql://flow@localhost/flow")


def test_a_string_that_is_no_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="is not a URL"):
        normalize_database_url("not a url")


def test_the_secret_key_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    key = settings.load_secret_key()
    path = tmp_path / "data" / "secret.key"

    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path / "data").load_secret_key() == key
    assert Settings(data_dir=tmp_path / "other").load_secret_key() != key


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.load_secret_key()
    (tmp_path / "secret.key").chmod(0o644)

    with pytest.raises(ConfigurationError, match=r"must not be readable by others \(0600\)"):
        settings.load_secret_key()


def test_a_secret_key_from_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLOWLOOM_SECRET_KEY", "k" * 40)
    settings = Settings(data_dir=tmp_path)

    assert settings.load_secret_key() == b"k" * 40
    assert not (tmp_path / "secret.key").exists()

    monkeypatch.setenv("FLOWLOOM_SECRET_KEY", "short")
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        Settings(data_dir=tmp_path).load_secret_key()


def test_rabbitmq_is_a_broker_with_redis_for_events() -> None:
    settings = Settings(
        broker_url="amqp://guest:guest@127.0.0.1:5672//", events_url="redis://127.0.0.1:6379/2"
    )

    assert settings.resolved_events_url == "redis://127.0.0.1:6379/2"
    assert Settings(broker_url="rediss://cache:6380/1").resolved_events_url == (
        "rediss://cache:6380/1"
    )


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"broker_url": "amqp://127.0.0.1//"}, "events_url .* must name a Redis server"),
        ({"broker_url": "kafka://127.0.0.1"}, "broker_url must start with redis://"),
        ({"broker_url": "127.0.0.1:6379"}, "not nothing://"),
        (
            {"broker_url": "amqp://127.0.0.1//", "events_url": "amqp://127.0.0.1//"},
            "events_url must be a Redis URL",
        ),
    ],
)
def test_a_broker_that_cannot_work_is_refused_by_name(given: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(**given)  # type: ignore[arg-type]
