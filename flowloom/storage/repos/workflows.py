"""Workflows, their numbered versions and the validation log of each version.

Every saved definition is a row of ``workflow_versions``, numbered from 1 with no gaps; the
workflow row carries the current definition and its number in ``version``, which doubles as the
token for optimistic concurrency (``expected_version``). A deleted workflow is soft-deleted: it
vanishes from every method here, while its runs and versions stay for the history.
"""

from __future__ import annotations

import builtins
import copy
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Final, Literal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from flowloom.exceptions import Conflict, InputError, NotFound
from flowloom.ids import PREFIXES, new_id
from flowloom.storage.errors import translate_integrity_error
from flowloom.storage.pages import Page, check_cursor, check_limit, page_of
from flowloom.storage.tables import ValidationLog, Workflow, WorkflowVersion
from flowloom.storage.tables.base import utcnow

__all__ = ["UNSET", "Unset", "WorkflowRepo"]


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""Marks an ``update`` argument that was not given (for fields where None is a real value)."""

Unset = _Unset
"""The type of :data:`UNSET`, for signatures that pass it on."""

_NAME_MAX_LENGTH = 200
_NOTE_MAX_LENGTH = 500


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > _NAME_MAX_LENGTH:
        raise InputError(f"name must be 1-{_NAME_MAX_LENGTH} characters", field="name")
    return name


def _check_definition(definition: dict[str, Any]) -> dict[str, Any]:
    # The graph's own rules are checked by flowloom.graph; storage only insists on a JSON object.
    if not isinstance(definition, dict):
        raise InputError("definition must be a JSON object", field="definition")
    return definition


def _check_note(note: str | None) -> None:
    if note is not None and len(note) > _NOTE_MAX_LENGTH:
        raise InputError(f"note must be at most {_NOTE_MAX_LENGTH} characters", field="note")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class WorkflowRepo:
    """One user's workflows. Another user's workflow id behaves exactly like a missing one."""

    def __init__(self, session: AsyncSession, *, owner_id: str) -> None:
        self._session = session
        self._owner_id = owner_id

    async def create(
        self,
        *,
        name: str,
        definition: dict[str, Any],
        description: str | None = None,
        nl_description: str | None = None,
        is_valid: bool = True,
    ) -> Workflow:
        """A new workflow at version 1, with that version saved in ``workflow_versions``.

        InputError for an empty or overlong name or a definition that is not an object;
        NotFound if the owner does not exist.
        """
        workflow = Workflow(
            id=new_id(PREFIXES["workflows"]),
            user_id=self._owner_id,
            name=_check_name(name),
            description=description,
            nl_description=nl_description,
            definition=_check_definition(definition),
            version=1,
            is_valid=is_valid,
        )
        self._session.add(workflow)
        # The workflow row first, so the version row's foreign key finds it.
        await self._flush(what="workflow")
        self._add_version(workflow, note=None)
        await self._flush(what="workflow version")
        return workflow

    async def get(self, *, workflow_id: str, lock: bool = False) -> Workflow:
        """The owner's workflow, or NotFound (also when it was deleted). With ``lock``, its row
        stays locked until the transaction ends (``FOR UPDATE`` on PostgreSQL; a SQLite write
        transaction holds the whole database already), so what is read from it still holds
        when the transaction writes."""
        statement = self._owned(workflow_id)
        if lock:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        workflow = await self._session.scalar(statement)
        if workflow is None:
            raise NotFound("workflow", workflow_id)
        return workflow

    async def current_version(self, *, workflow_id: str) -> int:
        """The owner's workflow's current version number (its definition not read); NotFound
        also when it was deleted."""
        version = await self._session.scalar(
            select(Workflow.version).where(
                Workflow.id == workflow_id,
                Workflow.user_id == self._owner_id,
                Workflow.deleted_at.is_(None),
            )
        )
        if version is None:
            raise NotFound("workflow", workflow_id)
        return int(version)

    async def find_by_name(self, *, name: str) -> Workflow | None:
        """The owner's newest live workflow named exactly ``name``, or None."""
        return await self._session.scalar(
            select(Workflow)
            .where(
                Workflow.user_id == self._owner_id,
                Workflow.name == name,
                Workflow.deleted_at.is_(None),
            )
            .order_by(Workflow.id.desc())
            .limit(1)
        )

    async def find_by_reference(self, *, name: str) -> Workflow | None:
        """The workflow a definition means by ``name``: the one named exactly so, else the one
        whose name matches with case, ``_`` and spaces ignored (``shout_item`` finds "Shout
        item", the name the example file ``shout_item.json`` is installed under)."""
        exact = await self.find_by_name(name=name)
        if exact is not None:
            return exact
        loose = name.replace("_", " ").strip().lower()
        return await self._session.scalar(
            select(Workflow)
            .where(
                Workflow.user_id == self._owner_id,
                func.lower(func.replace(Workflow.name, "_", " ")) == loose,
                Workflow.deleted_at.is_(None),
            )
            .order_by(Workflow.id.desc())
            .limit(1)
        )

    async def list(
        self, *, cursor: str | None = None, limit: int = 10, search: str | None = None
    ) -> Page[Workflow]:
        """The owner's workflows, newest first, deleted ones left out.

        ``search`` keeps those whose name or description contains it, ignoring case.
        """
        check_limit(limit)
        query = select(Workflow).where(
            Workflow.user_id == self._owner_id, Workflow.deleted_at.is_(None)
        )
        after = check_cursor(cursor, prefix=PREFIXES["workflows"])
        if after is not None:
            query = query.where(Workflow.id < after)
        if search:
            pattern = f"%{_escape_like(search.lower())}%"
            query = query.where(
                or_(
                    Workflow.name.ilike(pattern, escape="\\"),
                    Workflow.description.ilike(pattern, escape="\\"),
                )
            )
        rows = await self._session.scalars(query.order_by(Workflow.id.desc()).limit(limit + 1))
        return page_of(rows.all(), limit=limit)

    async def update(
        self,
        *,
        workflow_id: str,
        name: str | None = None,
        description: str | Literal[_Unset.UNSET] | None = UNSET,
        nl_description: str | Literal[_Unset.UNSET] | None = UNSET,
        definition: dict[str, Any] | None = None,
        is_valid: bool | None = None,
        active: bool | None = None,
        expected_version: int | None = None,
        note: str | None = None,
    ) -> Workflow:
        """Change the given fields; a changed definition becomes the next numbered version.

        Arguments left out (None, or ``UNSET`` for the fields where None clears the value) are
        not touched. A definition equal to the current one makes no new version. With
        ``expected_version``, Conflict unless the workflow is still at that version, so two
        editors who loaded the same version cannot silently overwrite each other; the row is
        locked while it changes (PostgreSQL), and the unique (workflow, version) pair backs that
        up. NotFound for another user's or a deleted workflow.
        """
        # Everything is checked before anything changes.
        new_name = _check_name(name) if name is not None else None
        if definition is not None:
            _check_definition(definition)
        _check_note(note)
        workflow = await self._get_for_update(workflow_id, expected_version=expected_version)
        if new_name is not None:
            workflow.name = new_name
        if not isinstance(description, _Unset):
            workflow.description = description
        if not isinstance(nl_description, _Unset):
            workflow.nl_description = nl_description
        if is_valid is not None:
            workflow.is_valid = is_valid
        if active is not None:
            workflow.active = active
        if definition is not None and definition != workflow.definition:
            workflow.definition = definition
            workflow.version += 1
            self._add_version(workflow, note=note)
        await self._flush(what="workflow")
        return workflow

    async def soft_delete(self, *, workflow_id: str) -> None:
        """Hide the workflow from every listing and lookup and stop its triggers.

        Its versions and runs stay. NotFound if it is another user's or already deleted.
        """
        workflow = await self._get_for_update(workflow_id, expected_version=None)
        workflow.deleted_at = utcnow()
        workflow.active = False
        await self._flush(what="workflow")

    async def list_versions(
        self, *, workflow_id: str, cursor: str | None = None, limit: int = 10
    ) -> Page[WorkflowVersion]:
        """The workflow's saved versions, newest first."""
        check_limit(limit)
        await self.get(workflow_id=workflow_id)
        query = select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id)
        after = check_cursor(cursor, prefix=PREFIXES["workflow_versions"])
        if after is not None:
            query = query.where(WorkflowVersion.id < after)
        rows = await self._session.scalars(
            query.order_by(WorkflowVersion.id.desc()).limit(limit + 1)
        )
        return page_of(rows.all(), limit=limit)

    async def get_version(self, *, workflow_id: str, version: int) -> WorkflowVersion:
        """One saved version, or NotFound (for the workflow too, if it is not the owner's)."""
        await self.get(workflow_id=workflow_id)
        return await self._version(workflow_id, version)

    async def restore_version(
        self,
        *,
        workflow_id: str,
        version: int,
        expected_version: int | None = None,
    ) -> Workflow:
        """Make an old version's definition current again, as a new version (history is kept).

        The new version is made even if the old definition equals the current one, so the
        history shows the restore. Conflict on an ``expected_version`` mismatch, as ``update``.
        """
        workflow = await self._get_for_update(workflow_id, expected_version=expected_version)
        old = await self._version(workflow_id, version)
        workflow.definition = old.definition
        workflow.version += 1
        self._add_version(workflow, note=f"restored from version {version}")
        await self._flush(what="workflow")
        return workflow

    async def log_validation(
        self, *, workflow_id: str, version: int, valid: bool, problems: Sequence[Any] = ()
    ) -> ValidationLog:
        """Record the outcome of validating one saved version.

        ``problems`` must be JSON-serialisable (e.g. dicts with node id, port and message).
        NotFound if the workflow or that version does not exist.
        """
        await self.get_version(workflow_id=workflow_id, version=version)
        entry = ValidationLog(
            id=new_id(PREFIXES["validation_logs"]),
            workflow_id=workflow_id,
            version=version,
            valid=valid,
            problems=builtins.list(problems),
        )
        self._session.add(entry)
        await self._flush(what="validation log")
        return entry

    async def list_validation_logs(
        self,
        *,
        workflow_id: str,
        version: int | None = None,
        cursor: str | None = None,
        limit: int = 10,
    ) -> Page[ValidationLog]:
        """The workflow's validation results, newest first; only one version's if given."""
        check_limit(limit)
        await self.get(workflow_id=workflow_id)
        query = select(ValidationLog).where(ValidationLog.workflow_id == workflow_id)
        if version is not None:
            query = query.where(ValidationLog.version == version)
        after = check_cursor(cursor, prefix=PREFIXES["validation_logs"])
        if after is not None:
            query = query.where(ValidationLog.id < after)
        rows = await self._session.scalars(query.order_by(ValidationLog.id.desc()).limit(limit + 1))
        return page_of(rows.all(), limit=limit)

    def _owned(self, workflow_id: str) -> Select[Workflow]:
        return select(Workflow).where(
            Workflow.id == workflow_id,
            Workflow.user_id == self._owner_id,
            Workflow.deleted_at.is_(None),
        )

    async def move_nodes(
        self,
        *,
        workflow_id: str,
        positions: Mapping[str, tuple[float, float]],
        expected_version: int | None = None,
    ) -> Workflow:
        """Move nodes (and sticky notes and groups) of the current version in place, without a
        new version: where a node sits changes nothing a run does, and a canvas saving each drag
        would otherwise fill the history with layout. InputError naming a node that is not in
        the workflow; Conflict when ``expected_version`` is given and a newer version was saved
        meanwhile."""
        workflow = await self._get_for_update(workflow_id, expected_version=expected_version)
        definition = copy.deepcopy(workflow.definition)
        # Sticky notes and groups move like nodes.
        nodes = {
            node.get("id"): node
            for key in ("annotations", "nodes")
            for node in definition.get(key, []) or []
            if isinstance(node, dict)
        }
        unknown = sorted(set(positions) - set(nodes))
        if unknown:
            raise InputError(f"no node {unknown[0]!r} in this workflow", field="positions")
        for node_id, (x, y) in positions.items():
            nodes[node_id]["position"] = {"x": x, "y": y}
        workflow.definition = definition
        current = await self._version(workflow_id, workflow.version)
        current.definition = definition
        await self._session.flush()
        return workflow

    async def _get_for_update(self, workflow_id: str, *, expected_version: int | None) -> Workflow:
        # populate_existing: a copy loaded earlier in this session must not hide a newer version
        # committed by someone else while we waited for the lock.
        workflow = await self._session.scalar(
            self._owned(workflow_id).with_for_update().execution_options(populate_existing=True)
        )
        if workflow is None:
            raise NotFound("workflow", workflow_id)
        if expected_version is not None and workflow.version != expected_version:
            raise Conflict(
                f"workflow {workflow_id!r} is at version {workflow.version}, "
                f"not {expected_version}: reload it and apply the change again"
            )
        return workflow

    async def _version(self, workflow_id: str, version: int) -> WorkflowVersion:
        found = await self._session.scalar(
            select(WorkflowVersion).where(
                WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version == version
            )
        )
        if found is None:
            raise NotFound("workflow version", f"{workflow_id}@{version}")
        return found

    def _add_version(self, workflow: Workflow, *, note: str | None) -> None:
        self._session.add(
            WorkflowVersion(
                id=new_id(PREFIXES["workflow_versions"]),
                workflow_id=workflow.id,
                version=workflow.version,
                definition=workflow.definition,
                created_by=self._owner_id,
                note=note,
            )
        )

    async def _flush(self, *, what: str) -> None:
        try:
            await self._session.flush()
        except IntegrityError as exc:
            raise translate_integrity_error(exc, what=what) from None
