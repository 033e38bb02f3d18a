"""Settings, read once from the environment (prefix ``FLOWLOOM_``), validated, then passed down.

Nothing else in flowloom reads environment variables: ``create_app(settings)``,
``Database(settings)`` and the CLI all take a ``Settings``.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from flowloom.exceptions import ConfigurationError

__all__ = ["Settings", "normalize_database_url"]

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
}


def normalize_database_url(url: str) -> str:
    """The async form of a database URL, or ConfigurationError naming what is wrong with it.

    ``sqlite:///x.db`` becomes ``sqlite+aiosqlite:///x.db`` and ``postgresql://...`` becomes
    ``postgresql+asyncpg://...``; other databases are refused.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"database URL {url!r} is not a URL: {exc}") from None
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        known = "sqlite:///PATH or postgresql://USER@HOST/DB"
        raise ConfigurationError(
            f"database URL scheme {parsed.drivername!r} is not supported; use {known}"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


class Settings(BaseSettings):
    """Everything flowloom can be told at start-up."""

    model_config = SettingsConfigDict(env_prefix="FLOWLOOM_", extra="ignore", frozen=True)

    data_dir: Path = Path(".flowloom")
    """Holds the SQLite file, the blob folder and the generated secret key."""

    database_url: str | None = None
    """SQLAlchemy URL; by default a SQLite file in ``data_dir``."""

    secret_key: SecretStr | None = None
    """Key for signing sessions and encrypting credentials; generated into the data dir if unset."""

    sqlite_busy_timeout_ms: Annotated[int, Field(ge=0)] = 30_000
    """How long a SQLite writer waits for another process's lock before giving up."""

    database_pool_size: Annotated[int, Field(ge=1)] = 10
    """Connections kept open to PostgreSQL."""

    page_size: Annotated[int, Field(ge=1, le=200)] = 10
    """Default rows per page of history listings."""

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            return normalize_database_url(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or SQLite inside ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'flowloom.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    def ensure_data_dir(self) -> Path:
        """Create the data dir (and its blob folder) if missing; refuse one that is a file."""
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ConfigurationError(f"data dir {self.data_dir} exists and is not a directory")
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def load_secret_key(self) -> bytes:
        """The instance's 32-byte secret key, created with mode 0600 on first use.

        ``FLOWLOOM_SECRET_KEY`` (base64 or any long string) wins over the file.
        """
        if self.secret_key is not None:
            raw = self.secret_key.get_secret_value().encode()
            try:
                decoded = base64.urlsafe_b64decode(raw)
                if len(decoded) == 32:
                    return decoded
            except ValueError:
                pass
            if len(raw) < 32:
                raise ConfigurationError("FLOWLOOM_SECRET_KEY must be at least 32 characters")
            return raw
        self.ensure_data_dir()
        path = self.data_dir / "secret.key"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _read_key_file(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.urlsafe_b64encode(secrets.token_bytes(32)) + b"\n")
        return _read_key_file(path)


def _read_key_file(path: Path) -> bytes:
    if path.stat().st_mode & 0o077:
        raise ConfigurationError(f"secret key file {path} must not be readable by others (0600)")
    try:
        key = base64.urlsafe_b64decode(path.read_bytes().strip())
    except ValueError:
        raise ConfigurationError(f"secret key file {path} is not base64") from None
    if len(key) != 32:
        raise ConfigurationError(f"secret key file {path} must hold 32 bytes")
    return key
