"""The answers of the Jobmon routes, parsed: pure functions of decoded JSON.

Every parser takes the decoded body and the route's label and returns the core's values, or
raises ``ResponseError(route, field, message)`` whose ``field`` is the JSON path of what is
wrong (``$.tasks["12"][1]``). The two large answers, ``get_tasks`` rows and
``get_downstream_tasks`` edges, have a fast parser for well-formed bodies; anything odd is
re-parsed by the checked parser, which names the field (``property_tests/test_parsers.py``
shows the two agree on every well-formed body).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Sequence
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any

from attrs import frozen

from swarmfold.core.events import EdgeRow, TaskRow
from swarmfold.core.id_array import packed
from swarmfold.core.row_page import RowPage
from swarmfold.shell.log.codec import ints_only

__all__ = [
    "ResponseError",
    "WorkflowMetadata",
    "parse_batch_answer",
    "parse_bound_id",
    "parse_cluster",
    "parse_downstream_ids",
    "parse_edges",
    "parse_limit",
    "parse_metadata",
    "parse_queue",
    "parse_queue_id",
    "parse_run_status",
    "parse_server_time",
    "parse_status_updates",
    "parse_task_rows",
    "parse_tasks_by_status",
    "parse_terminated",
    "parse_triage_answer",
    "shown",
]


class ResponseError(ValueError):
    """A response body that does not have the shape the route promises.

    ``route`` is ``"METHOD /path"`` (without the prefix), ``field`` a JSON path into the
    body (``$.tasks["12"][1]``).
    """

    def __init__(self, route: str, field: str, message: str) -> None:
        self.route = route
        self.field = field
        self.message = message
        super().__init__(f"{route}: {field}: {message}")



@frozen
class WorkflowMetadata:
    """``fetch_workflow_metadata``: ``[workflow_id, dag_id, max_concurrently_running]``."""

    workflow_id: int
    dag_id: int
    max_concurrently_running: int


# --- parsers (pure) ----------------------------------------------------------------------------


def shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key(field: str, key: Any) -> str:
    return f"{field}[{json.dumps(key)}]" if isinstance(key, str) else f"{field}[{key}]"


def _int(route: str, field: str, value: Any) -> int:
    if type(value) is not int:  # bool is not an int here
        raise ResponseError(route, field, f"expected an int, got {shown(value)}")
    return value


def _str(route: str, field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ResponseError(route, field, f"expected a string, got {shown(value)}")
    return value


def _dict(route: str, field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResponseError(route, field, f"expected an object, got {shown(value)}")
    return value


def _list(route: str, field: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ResponseError(route, field, f"expected an array, got {shown(value)}")
    return value


def _member(route: str, field: str, body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise ResponseError(route, f"{field}.{name}", "required field missing")
    return body[name]


def _id_key(route: str, field: str, key: str) -> int:
    try:
        value = int(key)
    except ValueError:
        raise ResponseError(route, field, f"expected a task id key, got {shown(key)}") from None
    if str(value) != key.strip():
        raise ResponseError(route, field, f"expected a task id key, got {shown(key)}")
    return value


def parse_tasks_by_status(
    body: Any, route: str = "task_status_updates", field: str = "$.tasks_by_status"
) -> dict[str, Sequence[int]]:
    """``{"<status>": [task_id, ...]}`` -> ``{status: (ids...)}``, a long list (a full sync)
    as an ``IdArray``. Unknown status codes are kept: they are data (the core notes them); a
    non-int id is an error."""
    mapping = _dict(route, field, body)
    out: dict[str, Sequence[int]] = {}
    for code, ids in mapping.items():
        if type(ids) is list and ints_only(ids):
            out[code] = packed(ids)  # the common case, checked in one C-level pass
            continue
        where = _key(field, code)
        items = _list(route, where, ids)
        out[code] = tuple(_int(route, f"{where}[{k}]", v) for k, v in enumerate(items))
    return out


def parse_status_updates(body: Any, route: str = "task_status_updates") -> tuple[
    dict[str, Sequence[int]], str | None
]:
    """``task_status_updates``: ``({status: ids}, time or None)``."""
    data = _dict(route, "$", body)
    tasks = parse_tasks_by_status(_member(route, "$", data, "tasks_by_status"), route)
    when = data.get("time")
    if when is not None:
        _str(route, "$.time", when)
    return tasks, when


def parse_run_status(body: Any, route: str = "log_heartbeat") -> str:
    """``{"status": "<code>"}`` -> the code (an unknown code is data, kept as it is)."""
    data = _dict(route, "$", body)
    return _str(route, "$.status", _member(route, "$", data, "status"))


def parse_limit(body: Any, route: str = "get_max_concurrently_running") -> int:
    """``{"max_concurrently_running": int}``."""
    data = _dict(route, "$", body)
    value = _int(route, "$.max_concurrently_running", _member(route, "$", data, "max_concurrently_running"))
    if value < 0:
        raise ResponseError(route, "$.max_concurrently_running", f"expected >= 0, got {value}")
    return value


def parse_bound_id(body: Any, route: str = "bind_resources") -> int:
    """``bind_resources`` answers a bare int (the TaskResources id)."""
    return _int(route, "$", body)


def parse_terminated(body: Any, route: str = "terminate_task_instances") -> int | None:
    """``{"workflow_run_id": int, "num_terminated": int}``; Jobmon ignores it, so only the
    kind of ``num_terminated`` is checked when present."""
    data = _dict(route, "$", body)
    value = data.get("num_terminated")
    return None if value is None else _int(route, "$.num_terminated", value)


def parse_server_time(body: Any, route: str = "time") -> str:
    """``{"time": "YYYY-MM-DD HH:MM:SS"}`` -> the string (opaque to the core: quirk Q14)."""
    data = _dict(route, "$", body)
    return _str(route, "$.time", _member(route, "$", data, "time"))


def parse_metadata(body: Any, route: str = "fetch_workflow_metadata") -> WorkflowMetadata | None:
    """``{"workflow": [workflow_id, dag_id, max_concurrently_running]}``; ``[]`` -> None."""
    data = _dict(route, "$", body)
    row = _list(route, "$.workflow", _member(route, "$", data, "workflow"))
    if not row:
        return None
    if len(row) < 3:
        raise ResponseError(route, "$.workflow", f"expected [workflow_id, dag_id, limit], got {shown(row)}")
    return WorkflowMetadata(
        _int(route, "$.workflow[0]", row[0]),
        _int(route, "$.workflow[1]", row[1]),
        _int(route, "$.workflow[2]", row[2]),
    )


def _literal(route: str, field: str, text: Any, what: str) -> Any:
    """A Python-literal string (``"{'memory': 0.5}"``), safely; JSON is accepted too."""
    if not isinstance(text, str):
        # Newer servers might send the decoded value; take it as it is.
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        raise ResponseError(route, field, f"{what}: not a Python or JSON literal: {shown(text)}") from None


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def _by_text(parse: Callable[[str, str, Any], Any]) -> Callable[[str, str, Any], Any]:
    """Memoise a row-string parser on the string itself: 10,000 rows usually share a handful
    of distinct strings. Results are immutable tuples; errors are never cached (they name
    the row's field path)."""
    cache: dict[str, Any] = {}

    def parse_cached(route: str, field: str, text: Any) -> Any:
        if not isinstance(text, str):
            return parse(route, field, text)
        value = cache.get(text)
        if value is None:
            value = parse(route, field, text)
            if len(cache) < 4096:
                cache[text] = value
        return value

    parse_cached.__doc__ = parse.__doc__
    return parse_cached


@_by_text
def _scales(route: str, field: str, text: Any) -> tuple[tuple[str, Any], ...]:
    value = _literal(route, field, text, "resource_scales")
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ResponseError(route, field, f"resource_scales: expected a dict, got {shown(value)}")
    out: list[tuple[str, Any]] = []
    for name, scale in value.items():
        if not isinstance(name, str):
            raise ResponseError(route, field, f"resource_scales: key {shown(name)} is not a string")
        if _number(scale):
            out.append((name, scale))
        elif isinstance(scale, list | tuple) and all(_number(v) for v in scale):
            out.append((name, tuple(scale)))
        else:
            raise ResponseError(
                route, field,
                f"resource_scales[{name!r}]: a number or a list of numbers is required to attach "
                f"(Jobmon cannot resume non-numeric custom scales either), got {shown(scale)}",
            )
    return tuple(out)


@_by_text
def _fallbacks(route: str, field: str, text: Any) -> tuple[str, ...]:
    value = _literal(route, field, text, "fallback_queues")
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(q, str) for q in value):
        raise ResponseError(route, field, f"fallback_queues: expected a list of names, got {shown(value)}")
    return tuple(value)


@_by_text
def _requested(route: str, field: str, text: Any) -> tuple[tuple[str, Any], ...]:
    if isinstance(text, str):
        try:
            value = json.loads(text)
        except ValueError:
            value = _literal(route, field, text, "requested_resources")
    else:
        value = text
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ResponseError(route, field, f"requested_resources: expected an object, got {shown(value)}")
    out: list[tuple[str, Any]] = []
    for name, v in value.items():
        if not isinstance(name, str) or not (_number(v) or isinstance(v, str)):
            raise ResponseError(
                route, field,
                f"requested_resources[{name!r}]: expected a number or a string, got {shown(v)}",
            )
        out.append((name, v))
    return tuple(sorted(out))


#: Length of a ``get_tasks`` row.
TASK_ROW_LENGTH = 9
#: Rows and edges are returned in ascending task id order.
_BY_TASK_ID = attrgetter("task_id")


class _Recheck(Exception):
    """Raised by a fast parser when something is off: the checked parser names it."""


def parse_task_rows(body: Any, route: str = "get_tasks") -> Sequence[TaskRow]:
    """``{"tasks": {"<id>": [array_id, status, max_attempts, resource_scales_str,
    fallback_queues_str, requested_resources_json_str, cluster_name, queue_name,
    array_max_concurrently_running]}}`` -> rows in ascending task id order.

    Well-formed rows take a fast path that gives them as a ``RowPage`` (columns, no object
    per row); anything odd is re-parsed by the checked parser, whose error names the exact
    field."""
    try:
        return _fast_task_rows(body, route)
    except (_Recheck, ResponseError, LookupError, TypeError, ValueError, AttributeError):
        return _checked_task_rows(body, route)


def _fast_task_rows(body: Any, route: str) -> Sequence[TaskRow]:
    """Column by column, in C: the rows' items are transposed into columns, each column's
    types are checked at once, and each distinct resource string is parsed once."""
    table = _columns_of(body["tasks"], TASK_ROW_LENGTH)
    if table is None:
        return ()
    task_ids, columns = table
    array_ids, statuses, max_attempts, scales, fallbacks, requested, clusters, queues, limits = columns
    if not (
        ints_only(array_ids) and ints_only(max_attempts) and ints_only(limits)
        and _strs_only(statuses) and _strs_only(clusters) and _strs_only(queues)
    ):
        raise _Recheck
    return _page(TaskRow, [
        task_ids, array_ids, statuses, max_attempts,
        _parsed_column(_scales, route, scales), _parsed_column(_fallbacks, route, fallbacks),
        _parsed_column(_requested, route, requested), clusters, queues, limits,
    ])


def _columns_of(table: Any, width: int) -> tuple[list[int], list[tuple[Any, ...]]] | None:
    """The task ids of a ``{"<task_id>": [item, ...]}`` table and the first ``width`` items
    of its rows as columns (transposed in C), in the table's order; ``None`` for an empty
    table. ``_Recheck`` unless it is an object, every key an id written plainly (``"12"``,
    not ``"012"``) and every row an array of ``width`` items or more."""
    if type(table) is not dict:
        raise _Recheck
    if not table:
        return None
    keys = list(table)
    task_ids = list(map(int, keys))  # ValueError and TypeError: rechecked
    if list(map(str, task_ids)) != keys:
        raise _Recheck
    items = list(table.values())
    if set(map(type, items)) != {list} or min(map(len, items)) < width:
        raise _Recheck
    return task_ids, list(zip(*items, strict=False))[:width]


def _strs_only(column: Any) -> bool:
    return set(map(type, column)) == {str}


def _parsed_column(parse: Callable[[str, str, Any], Any], route: str, column: Any) -> list[Any]:
    """``parse`` of each item, once per distinct string (a column holding decoded values,
    as newer servers may send, is parsed item by item)."""
    if not _strs_only(column):
        return [parse(route, "", value) for value in column]
    parsed = {text: parse(route, "", text) for text in dict.fromkeys(column)}
    return list(map(parsed.__getitem__, column))


def _page(row_cls: type[Any], columns: list[Sequence[Any]]) -> RowPage[Any]:
    """The columns (task ids first) as a page in ascending task id order (the server's order
    is kept when it is that; ``sorted`` is stable, as the checked parser's sort)."""
    task_ids = columns[0]
    if not all(map(int.__lt__, task_ids, task_ids[1:])):
        order = itemgetter(*sorted(range(len(task_ids)), key=task_ids.__getitem__))
        columns = [order(c) for c in columns]
    return RowPage(row_cls, [tuple(c) for c in columns])


def _checked_task_rows(body: Any, route: str) -> tuple[TaskRow, ...]:
    data = _dict(route, "$", body)
    tasks = _dict(route, "$.tasks", _member(route, "$", data, "tasks"))
    rows: list[TaskRow] = []
    for key, row in tasks.items():
        where = _key("$.tasks", key)
        task_id = _id_key(route, where, key)
        items = _list(route, where, row)
        if len(items) < TASK_ROW_LENGTH:
            raise ResponseError(
                route, where, f"expected {TASK_ROW_LENGTH} items, got {len(items)}: {shown(items)}"
            )
        rows.append(TaskRow(
            task_id=task_id,
            array_id=_int(route, f"{where}[0]", items[0]),
            status=_str(route, f"{where}[1]", items[1]),
            max_attempts=_int(route, f"{where}[2]", items[2]),
            resource_scales=_scales(route, f"{where}[3]", items[3]),
            fallback_queues=_fallbacks(route, f"{where}[4]", items[4]),
            requested_resources=_requested(route, f"{where}[5]", items[5]),
            cluster_name=_str(route, f"{where}[6]", items[6]),
            queue_name=_str(route, f"{where}[7]", items[7]),
            array_limit=_int(route, f"{where}[8]", items[8]),
        ))
    rows.sort(key=_BY_TASK_ID)
    return tuple(rows)


def parse_downstream_ids(
    value: Any, route: str = "get_downstream_tasks", field: str = "$"
) -> tuple[int, ...]:
    """Downstream node ids: a list, ``null``, or (servers answering clients <= 3.4.23) a
    quoted JSON string of a list."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ResponseError(route, field, f"expected a JSON list string, got {shown(value)}") from None
        if value is None:
            return ()
    items = _list(route, field, value)
    return tuple(_int(route, f"{field}[{k}]", v) for k, v in enumerate(items))


def parse_edges(body: Any, route: str = "get_downstream_tasks") -> Sequence[EdgeRow]:
    """``{"downstream_tasks": {"<task_id>": [node_id, [downstream_node_id, ...] | null]}}``."""
    try:
        return _fast_edges(body)
    except (_Recheck, LookupError, TypeError, ValueError, AttributeError):
        return _checked_edges(body, route)


def _fast_edges(body: Any) -> Sequence[EdgeRow]:
    """Column by column, in C, as ``_fast_task_rows``."""
    table = _columns_of(body["downstream_tasks"], 2)
    if table is None:
        return ()
    task_ids, (node_ids, downstream_or_none) = table
    kinds = set(map(type, downstream_or_none))
    if not ints_only(node_ids) or not kinds <= {list, type(None)}:
        raise _Recheck  # quoted JSON strings (old servers) and anything odd
    downstream: Sequence[Any] = downstream_or_none
    if type(None) in kinds:
        downstream = [() if ids is None else ids for ids in downstream_or_none]
    if not ints_only(chain.from_iterable(downstream)):
        raise _Recheck  # the checked parser names the id that is not an int
    return _page(EdgeRow, [task_ids, node_ids, list(map(tuple, downstream))])


def _checked_edges(body: Any, route: str) -> tuple[EdgeRow, ...]:
    data = _dict(route, "$", body)
    tasks = _dict(route, "$.downstream_tasks", _member(route, "$", data, "downstream_tasks"))
    edges: list[EdgeRow] = []
    for key, row in tasks.items():
        where = _key("$.downstream_tasks", key)
        task_id = _id_key(route, where, key)
        items = _list(route, where, row)
        if len(items) < 2:
            raise ResponseError(route, where, f"expected [node_id, downstream_node_ids], got {shown(items)}")
        edges.append(EdgeRow(
            task_id,
            _int(route, f"{where}[0]", items[0]),
            parse_downstream_ids(items[1], route, f"{where}[1]"),
        ))
    edges.sort(key=_BY_TASK_ID)
    return tuple(edges)


def parse_cluster(body: Any, route: str = "cluster") -> tuple[int, str]:
    """``{"cluster": [id, name, type, connection_parameters]}`` -> ``(id, type)`` (type ``""``
    when the row has none)."""
    row = _list(route, "$.cluster", _member(route, "$", _dict(route, "$", body), "cluster"))
    if not row:
        raise ResponseError(route, "$.cluster", "empty: no such cluster")
    kind = row[2] if len(row) > 2 and row[2] is not None else ""
    return _int(route, "$.cluster[0]", row[0]), _str(route, "$.cluster[2]", kind)


def parse_queue(body: Any, route: str = "queue") -> tuple[int, tuple[tuple[str, float, float], ...]] | None:
    """``{"queue": [id, name, parameters_str]}`` -> ``(id, bounds)``; ``None`` for ``[]``.

    ``parameters_str`` is a Python literal such as ``'{"cores": (1, 20)}'``: each entry with
    a ``(min, max)`` pair of numbers is a bound.
    """
    row = _list(route, "$.queue", _member(route, "$", _dict(route, "$", body), "queue"))
    if not row:
        return None
    queue_id = _int(route, "$.queue[0]", row[0])
    params = _literal(route, "$.queue[2]", row[2] if len(row) > 2 else "{}", "queue parameters") or {}
    if not isinstance(params, dict):
        raise ResponseError(route, "$.queue[2]", f"queue parameters: expected a mapping, got {shown(params)}")
    bounds = []
    for name, value in sorted(params.items()):
        if (
            isinstance(value, list | tuple) and len(value) == 2
            and all(_number(v) for v in value)
        ):
            bounds.append((str(name), float(value[0]), float(value[1])))
    return queue_id, tuple(bounds)


def parse_queue_id(body: Any, route: str = "queue") -> int:
    """``{"queue": [id, name, parameters_str]}`` -> id."""
    row = _list(route, "$.queue", _member(route, "$", _dict(route, "$", body), "queue"))
    if not row:
        raise ResponseError(route, "$.queue", "empty: no such queue")
    return _int(route, "$.queue[0]", row[0])


def parse_batch_answer(body: Any, route: str) -> dict[str, Sequence[int]]:
    """``queue_task_batch``: ``{"tasks_by_status": {status: [ids]}}``."""
    return parse_tasks_by_status(_member(route, "$", _dict(route, "$", body), "tasks_by_status"), route)


def parse_triage_answer(body: Any, route: str) -> None:
    """``set_status_for_triaging`` answers ``{}``; any object will do, ``null`` too."""
    if body is not None:
        _dict(route, "$", body)
