"""Load the fill's rows into PostgreSQL, fast: binary COPY, one transaction, indexes after.

One connection of the ``Database`` (so its schema search path too), ONE transaction for the
whole load, so a failure leaves the tables as they were. While it lasts, the secondary indexes
of the loaded tables are dropped and built again after the rows from their own definitions
(``pg_get_indexdef``), and so are the tables' foreign keys (``pg_get_constraintdef``): adding
a foreign key back checks every row in one join, where keeping it checks each copied row by a
trigger and a look-up (half of the load's time). Rows go in by ``copy_records_to_table``
(binary COPY) in the types asyncpg's codecs take.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from benchmarks.fill_rows import TABLES, Chunk, LoadReport
from flowloom.storage.database import Database

__all__ = ["load"]


_INDEXES = """
SELECT pg_get_indexdef(i.indexrelid), c.relname
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = ANY($1::regclass[])
  AND NOT EXISTS (
    SELECT 1 FROM pg_constraint k
    WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')
  )
ORDER BY c.oid
"""
_FOREIGN_KEYS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE contype = 'f' AND conrelid = ANY($1::regclass[])
ORDER BY oid
"""


async def load(db: Database, chunks: Iterable[Chunk]) -> LoadReport:
    """Write ``chunks`` into the migrated PostgreSQL database of ``db``."""
    report = LoadReport()
    tables = [table for table, _ in TABLES]
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        pg: Any = raw.driver_connection
        async with pg.transaction():
            await pg.execute("SET LOCAL maintenance_work_mem = '512MB'")
            indexes = await pg.fetch(_INDEXES, tables)
            foreign_keys = await pg.fetch(_FOREIGN_KEYS, tables)
            for table, name, _definition in foreign_keys:
                await pg.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            for _definition, name in indexes:
                await pg.execute(f'DROP INDEX "{name}"')
            began = last = time.perf_counter()
            for chunk in chunks:
                for (table, columns), rows in zip(TABLES, chunk, strict=True):
                    await pg.copy_records_to_table(table, columns=columns, records=rows)
                now = time.perf_counter()
                report.rows += len(chunk)
                report.chunk_rates.append(len(chunk) / (now - last))
                last = now
            report.row_seconds = last - began
            for definition, _name in indexes:
                await pg.execute(definition)
            for table, name, definition in foreign_keys:
                await pg.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            report.index_seconds = time.perf_counter() - last
    return report
