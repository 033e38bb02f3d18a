"""Alembic's entry point for flowloom's one migration chain.

``flowloom.storage.migrate`` runs Alembic with a live connection in ``config.attributes``: a
connection of the ``Database`` being migrated, already inside the transaction the caller commits.
So the engine's own settings hold while migrating (SQLite pragmas, a PostgreSQL ``search_path``),
and there is no URL, ini file or engine to set up here.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from flowloom.storage.migrate import context_options


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **context_options(connection.dialect.name))
    # The caller began the transaction, so Alembic joins it and leaves the commit to the caller.
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if context.is_offline_mode() or not isinstance(_connection, Connection):
    raise RuntimeError(
        "flowloom's migrations run through flowloom.storage.migrate (or `flowloom db upgrade`),"
        " which hands env.py a connection; offline SQL generation is not supported"
    )
run_migrations(_connection)
