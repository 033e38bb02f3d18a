"""Settings, read once from the environment (prefix ``FLOWLOOM_``), validated, then passed down.

Nothing else in flowloom reads environment variables: ``create_app(settings)``,
``Database(settings)`` and the CLI all take a ``Settings``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from flowloom.exceptions import ConfigurationError
from flowloom.rates import parse_rate

__all__ = ["Settings", "normalize_database_url"]

_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600
_SIDE = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database file."""

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+flowloom",
    "sqlite+aiosqlite": "sqlite+flowloom",
    "sqlite+flowloom": "sqlite+flowloom",
    "sqlite+pysqlite": "sqlite+flowloom",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
}


_REDIS_SCHEMES = frozenset({"redis", "rediss"})
_AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def normalize_database_url(url: str) -> str:
    """The async form of a database URL, or ConfigurationError naming what is wrong with it.

    ``sqlite:///x.db`` becomes ``sqlite+flowloom:///x.db`` (flowloom's own driver,
    ``flowloom.storage.sqlite_driver``) and ``postgresql://...`` becomes
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


_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,50}")


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

    # LLM providers: the instance-wide keys. A user's stored credential replaces the key (and
    # keeps the base URL) for the calls that name it.
    openai_api_key: SecretStr | None = None
    """Key for OpenAI, or for the OpenAI-compatible server at ``openai_base_url``."""
    openai_base_url: str | None = None
    """Any server speaking OpenAI chat completions (Ollama, vLLM, LM Studio); default OpenAI."""
    openai_requests_per_s: Annotated[float, Field(gt=0)] | None = None
    """Most calls per second this process makes to OpenAI; None for no limit."""
    gemini_api_key: SecretStr | None = None
    """Key for the Gemini API."""
    gemini_base_url: str | None = None
    """Endpoint of the Gemini API; default Google's."""
    gemini_requests_per_s: Annotated[float, Field(gt=0)] | None = None
    """Most calls per second this process makes to Gemini; None for no limit."""
    anthropic_api_key: SecretStr | None = None
    """Key for Anthropic."""
    anthropic_base_url: str | None = None
    """Endpoint of the Anthropic API; default Anthropic's."""
    anthropic_requests_per_s: Annotated[float, Field(gt=0)] | None = None
    """Most calls per second this process makes to Anthropic; None for no limit."""
    provider_timeout_s: Annotated[float, Field(gt=0)] = 120.0
    """Longest wait for one attempt of a model call (for streams: for each next piece)."""
    provider_max_attempts: Annotated[int, Field(ge=1, le=10)] = 4
    """Tries per model call on 429, 5xx and timeouts, the first included."""
    thread_history_messages: Annotated[int, Field(ge=1, le=1000)] = 50
    """How many of a thread's latest messages go to the model with each new one."""

    credentials_key: SecretStr | None = None
    """Key (32+ characters) that encrypts stored credentials; default: derived from the
    instance secret key. Changing it needs ``credentials_old_keys`` until rows are rotated."""
    credentials_old_keys: tuple[SecretStr, ...] = ()
    """Earlier credential keys, still accepted for reading (a JSON list in the environment)."""

    # ---- the HTTP server (flowloom serve); see flowloom.api

    session_ttl_s: Annotated[int, Field(ge=60)] = 14 * 24 * 3600
    """How long a sign-in session lasts."""

    cookie_secure: bool | None = None
    """Send session cookies only over HTTPS; None: when the request itself came over HTTPS."""

    allow_registration: bool = True
    """Whether anybody may create an account with ``POST /api/v1/auth/register``."""

    login_max_failures_per_account: Annotated[int, Field(ge=1)] = 5
    """Failed sign-ins to one account from one client address that cost nothing; after them,
    each further attempt from that address waits 1 s, 2 s, 4 s, ... (the owner, from their own
    address, is not slowed; see ``flowloom.api.security.LoginLimiter``)."""

    login_max_failures_per_address: Annotated[int, Field(ge=1)] = 20
    """Failed sign-ins (and registrations of a taken email) from one client address within the
    window before the address is refused for a while, whatever the accounts."""

    login_failure_window_s: Annotated[float, Field(gt=0)] = 900.0
    """The sliding window failed sign-ins are counted over, and how long after its last
    failure a streak is forgotten (in process, per server)."""

    external_auth_issuer: str | None = None
    """Issuer (``iss``) of the identity provider's JWTs; external sign-in is off when unset."""

    external_auth_audience: str | None = None
    """The audience (``aud``) those tokens must name; required with an issuer."""

    external_auth_shared_key: SecretStr | None = None
    """HS256 shared key of the provider (give this or ``external_auth_jwks_url``)."""

    external_auth_jwks_url: str | None = None
    """The provider's JWKS URL, for RS256/ES256 tokens (give this or the shared key)."""

    external_auth_sign_in_url: str | None = None
    """The identity provider's sign-in page for the "Sign in with ..." button; it must send the
    browser back to ``/signin#token=<JWT>``. None: no button."""
    external_auth_provider: Annotated[str, Field(min_length=1, max_length=64)] = "external"
    """The provider's name stored with each identity (``clerk``, ``auth0``, ...)."""

    max_request_body_bytes: Annotated[int, Field(ge=1024)] = 2 * 1024 * 1024
    """Largest request body the API reads; bigger ones get 413."""
    max_upload_bytes: Annotated[int, Field(ge=1024)] = 20 * 1024 * 1024
    """Largest file ``POST /api/v1/blobs`` takes (its body may be this plus the form's few
    hundred bytes); bigger ones get 413."""

    max_nodes_per_workflow: Annotated[int, Field(ge=1)] = 500
    """Most nodes one workflow definition may hold."""

    max_run_inputs_bytes: Annotated[int, Field(ge=1)] = 256 * 1024
    """Largest run inputs (as JSON) a run may be started with."""

    run_wait_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    """How long ``?wait=true`` waits for a run before answering 202 with it unfinished."""

    # ---- triggers (flowloom.triggers)

    schedule_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """How often the server looks for schedules whose fire time has come."""

    schedule_grace_s: Annotated[float, Field(ge=0)] = 60.0
    """How late a schedule may still fire; a fire time missed by more (the server was down)
    is reported in the log and the audit log, and not run."""

    # ---- the engine (flowloom.engine.Engine.from_settings)

    engine_concurrency: Annotated[int, Field(ge=1)] = 64
    """Node attempts running at once in one engine, across every run."""
    engine_lease_s: Annotated[float, Field(gt=0)] = 600.0
    """How long a claim on a node lasts unless renewed (a running node renews it at half)."""
    max_running_nodes_per_user: Annotated[int, Field(ge=1)] | None = None
    """Node attempts of one user's runs running at once in one engine; None for no limit."""
    node_concurrency_limits: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    """Limits per node concurrency key (JSON in the environment): a whole key such as
    ``http:api.example.com``, or a family such as ``http``, whose limit then applies to each
    of its keys (each host) on its own."""
    subworkflow_max_depth: Annotated[int, Field(ge=1, le=100)] = 10
    """How deep ``workflow.call`` sub-runs may nest; a workflow calling itself stops there."""
    allow_private_http: bool = False
    """Let http.request and image.load reach private, loopback and link-local addresses."""

    # ---- distributed mode (flowloom.worker): PostgreSQL plus ``flowloom worker`` processes

    executor: Literal["local", "celery"] = "local"
    """``local``: this process drives its runs. ``celery``: ``flowloom serve`` writes runs and
    queues them; ``flowloom worker`` processes drive them (PostgreSQL and Redis needed)."""
    broker_url: str = "redis://127.0.0.1:6379/0"
    """The Celery broker that carries runs to the workers: Redis (``redis://``, ``rediss://``)
    or RabbitMQ (``amqp://``, ``amqps://``)."""
    events_url: str | None = None
    """Redis for run events (pub/sub) and run claims; None: the broker's Redis (required when
    the broker is RabbitMQ)."""
    worker_queue: Annotated[str, Field(min_length=1, max_length=100)] = "flowloom"
    """The Celery queue of runs; also names the Redis keys and channel, so instances sharing
    one Redis keep apart by using different queues."""
    worker_claim_ttl_s: Annotated[float, Field(ge=0.5, le=3600)] = 2.0
    """How long a worker's claim on a run lasts unless renewed (every third of it, from a
    thread that a busy event loop cannot delay): how soon another worker takes over the runs
    of a worker that died. Redis times it, so no two machines' clocks are compared."""
    worker_sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = 0.25
    """How often workers look for unfinished runs that nobody drives, to queue them again
    (one worker at a time, one indexed query)."""
    worker_runs_at_once: Annotated[int, Field(ge=1, le=1000)] = 8
    """The most runs one worker process drives at once when it takes runs from the inbox (the
    broker is the claims' Redis): its runs share one event loop, so a run that waits on a slow
    service leaves the others going. ``flowloom worker --concurrency N`` runs N such processes."""
    worker_node_queues: dict[str, str] = Field(default_factory=lambda: {"image.*": "heavy"})
    """Node types that run on a Celery queue of their own (distributed mode): a node type, or
    a pattern such as ``image.*``, -> a queue name. The run's driver sends such a node to the
    queue ``<worker_queue>.<name>`` and goes on when its outcome comes back, so that other
    machines (``flowloom worker --queue heavy``) do the heavy work. An exact type wins over a
    pattern, a longer pattern over a shorter one; ``""`` keeps a type on the driver. As JSON in
    the environment: ``FLOWLOOM_WORKER_NODE_QUEUES='{"image.*": "heavy"}'``."""
    worker_visibility_timeout_s: Annotated[int, Field(ge=10, le=86400)] = 300
    """How long the broker keeps a delivered but unacknowledged task before handing it out
    again (a task whose worker was killed). Such a late copy is harmless: its worker finds the
    run driven or finished and acknowledges it (the sweep has long since resumed the run)."""

    # ---- API keys
    api_key_rotation_grace_s: Annotated[int, Field(ge=0, le=30 * 86400)] = 24 * 3600
    """After ``POST /api-keys/{id}/rotate``, how long the replaced secret still works (default
    one day), so programs can switch to the new one without downtime; 0: refused at once."""
    api_key_rate_limit: str | None = None
    """Requests each API key may make: ``"<count>/<s|m|h>"`` (``"20/s"``); a burst of up to
    ``count`` requests is allowed at once, then they are spread evenly. None: no limit. An admin
    may set another limit for one key. Over it: 429 with ``Retry-After``."""
    api_key_rate_limit_redis_url: str | None = None
    """Count API key requests in this Redis instead of the database (several servers then
    share the counts without a write to the database per request)."""

    # ---- maintenance and identity provider webhooks
    maintenance_interval_s: Annotated[float, Field(ge=0, le=30 * 86400)] = 86400.0
    """How often the server runs its maintenance pass (retention, expiry, purges): daily by
    default, the first a minute after start; 0: never (run ``flowloom db maintain`` instead)."""
    retention_archive_dir: Path | None = None
    """Runs the daily pass prunes are first written here as JSON Lines; None: not archived."""
    backup_before_migrate: bool = True
    """Before migrating an existing SQLite database, copy it to ``data_dir/backups``."""
    clerk_webhook_secret: SecretStr | None = None
    """The signing secret (``whsec_...``) of the identity provider's user webhooks at
    ``POST /api/v1/auth/webhooks/clerk``; None: that route answers 404."""

    @field_validator("api_key_rate_limit")
    @classmethod
    def _check_api_key_rate_limit(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        parse_rate(value)  # ValueError naming what is wrong
        return value.strip()

    @model_validator(mode="after")
    def _check_external_auth(self) -> Settings:
        if self.external_auth_issuer:
            if not self.external_auth_audience:
                raise ValueError("external_auth_audience is required with external_auth_issuer")
            if (self.external_auth_shared_key is None) == (self.external_auth_jwks_url is None):
                raise ValueError(
                    "give exactly one of external_auth_shared_key and external_auth_jwks_url"
                )
        return self

    @model_validator(mode="after")
    def _check_broker(self) -> Settings:
        broker = _scheme(self.broker_url)
        if broker not in _REDIS_SCHEMES | _AMQP_SCHEMES:
            raise ValueError(
                f"broker_url must start with redis://, rediss://, amqp:// or amqps://, "
                f"not {broker or 'nothing'}://"
            )
        if self.events_url is not None and _scheme(self.events_url) not in _REDIS_SCHEMES:
            raise ValueError("events_url must be a Redis URL (redis:// or rediss://)")
        if self.events_url is None and broker in _AMQP_SCHEMES:
            raise ValueError(
                "events_url (FLOWLOOM_EVENTS_URL) must name a Redis server when the broker is "
                "RabbitMQ: run events and claims travel through Redis"
            )
        return self

    @field_validator("worker_node_queues")
    @classmethod
    def _check_node_queues(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern, queue in value.items():
            if not pattern or len(pattern) > 100:
                raise ValueError(f"node type pattern {pattern!r} must have 1 to 100 characters")
            if queue and not _QUEUE_NAME.fullmatch(queue):
                raise ValueError(
                    f"queue {queue!r} for {pattern!r} must be 1 to 50 letters, digits, '_' "
                    "or '-' (or empty: run on the driver)"
                )
        return value

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
        return f"sqlite+flowloom:///{(self.data_dir / 'flowloom.db').resolve()}"

    @property
    def resolved_events_url(self) -> str:
        """The Redis that carries run events and claims in distributed mode."""
        return self.events_url or self.broker_url

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    def ensure_data_dir(self) -> Path:
        """Create the data dir (and its blob folder) if missing; refuse one that is a file.

        Both are owner-only (0700), and so is a SQLite database file of the configured URL
        (0600; created empty here if missing, because SQLite gives its ``-wal`` and ``-shm``
        files the mode of the database file). Modes are set with chmod, whatever the umask,
        and existing ones are tightened too.

        Safe to call while this process has the database open (``Engine.from_settings`` does,
        through ``load_secret_key``): an existing database file is never opened here, only
        chmod-ed by path.
        """
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ConfigurationError(f"data dir {self.data_dir} exists and is not a directory")
        for folder in (self.data_dir, self.blob_dir):
            folder.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
            os.chmod(folder, _PRIVATE_DIR)
        sqlite_file = self.sqlite_path
        if sqlite_file is not None and sqlite_file.parent.is_dir():
            # O_EXCL: an existing file is left unopened. Closing any descriptor of a file drops
            # every POSIX lock this process holds on it, SQLite's included, and SQLite does not
            # notice: its connections go on without their shared lock on the database file, so
            # another process that closes its connection (the sqlite3 shell, a backup, a lock
            # held for maintenance) takes the exclusive lock, believes it was the last one,
            # checkpoints and deletes the -wal and -shm files. This process then commits into
            # the deleted ones: its own connections see those commits, no other process does,
            # and a crash loses all of them.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(sqlite_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE))
            for path in (
                sqlite_file,
                *(sqlite_file.with_name(sqlite_file.name + s) for s in _SIDE),
            ):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(path, _PRIVATE_FILE)
        return self.data_dir

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file in force, or None (PostgreSQL, or SQLite in memory)."""
        url = make_url(self.resolved_database_url)
        if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
            return None
        if url.database.startswith("file:") or url.query.get("mode") == "memory":
            return None
        return Path(url.database)

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
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE)
        except FileExistsError:
            return _read_key_file(path)
        os.fchmod(fd, _PRIVATE_FILE)  # whatever the umask
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
