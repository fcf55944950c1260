"""The cattrs JSON codec for every core value: events, commands, specs, config, summaries.

Encoding is canonical, so logs are byte-stable: JSON objects have sorted keys, the output is
compact, ``float`` fields are always written as floats, and ``Event``/``Command`` values carry
their class name under ``"type"``. Decoding is strict: a value of the wrong JSON kind, a
missing or unknown field, or an unknown ``"type"`` tag raises :class:`CodecError`, whose
message names the JSON path of every problem (``$.topology.tasks[3].array_id: expected int,
got 'x'``). Primitive unions (``ResourceValue``, ``Scale``) keep their kind: an int stays an
int, a float a float, a list becomes a tuple.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, TypeVar, get_args, get_origin, overload

import attrs
import numpy as np
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.fns import identity
from cattrs.gen import make_dict_structure_fn
from cattrs.preconf.json import JsonConverter, make_converter
from cattrs.strategies import configure_tagged_union
from cattrs.v import format_exception, transform_error

from swarmfold.core.commands import COMMAND_TYPES, Command
from swarmfold.core.errors import SwarmfoldError
from swarmfold.core.events import EVENT_TYPES, EdgeRow, Event, TaskRow
from swarmfold.core.resources import ResourceValue, Scale

__all__ = [
    "TAG",
    "CodecError",
    "command_from_dict",
    "command_to_dict",
    "converter",
    "event_from_dict",
    "event_to_dict",
    "from_json",
    "structure",
    "to_json",
    "unstructure",
]

T = TypeVar("T")

#: The key naming the class of an ``Event`` or ``Command`` in its JSON object.
TAG = "type"

_Hook = Callable[[Any, Any], Any]
#: Separates a description from the path in ``transform_error``'s ``"<desc> @ <path>"``.
_SEP = "\x1f"
_REPR_LIMIT = 60


class CodecError(ValueError):
    """Input that does not decode to the requested type; ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str] | tuple[str, ...]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__("; ".join(self.errors))


class _Mismatch(TypeError):
    """A JSON value of the wrong kind; the message is the whole description."""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _mismatch(expected: str, value: object) -> _Mismatch:
    return _Mismatch(f"expected {expected}, got {_show(value)}")


def _note_index(exc: Exception, index: int | str, type_: Any) -> Exception:
    exc.__notes__ = [
        *getattr(exc, "__notes__", []),
        IterableValidationNote(f"Structuring @ index {index!r}", index, type_),
    ]
    return exc


def _note_field(exc: Exception, name: str, type_: Any) -> Exception:
    exc.__notes__ = [
        *getattr(exc, "__notes__", []),
        AttributeValidationNote(f"Structuring field {name!r}", name, type_),
    ]
    return exc


# --- strict primitives -----------------------------------------------------------------


def _structure_int(value: Any, _: Any) -> int:
    if type(value) is int:
        return value
    raise _mismatch("int", value)


def _structure_float(value: Any, _: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _mismatch("float", value)


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is str:
        return value
    raise _mismatch("str", value)


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is bool:
        return value
    raise _mismatch("bool", value)


def ints_only(values: Any) -> bool:
    """Every item of ``values`` is an ``int`` (not a ``bool``), checked in C."""
    return set(map(type, values)) <= _INT_ONLY


def int64_array(values: list[Any] | tuple[Any, ...]) -> array[int] | None:
    """``values`` as an ``array('q')`` when every item is an int that fits in 64 bits and
    none is a ``bool``, else ``None``. One C pass converts and checks (the array rejects
    floats, strings, ``None`` and ints past 64 bits; it takes a numpy int as its value); only
    the items equal to 0 or 1, the values a ``bool`` converts to, are then looked at again."""
    try:
        column = array("q", values)
    except (TypeError, OverflowError):
        return None
    zero_or_one = np.flatnonzero(np.frombuffer(column, dtype=np.uint64) <= 1).tolist()
    if len(zero_or_one) > 1:
        if bool in set(map(type, itemgetter(*zero_or_one)(values))):
            return None
    elif zero_or_one and type(values[zero_or_one[0]]) is bool:
        return None
    return column


def _make_int_column_structure(conv: JsonConverter) -> _Hook:
    """``Sequence[int]`` (a ``TaskTable`` column, a million entries at scale) as an
    ``array('q')``, checked in C (``int64_array``); a column with a non-int item goes
    through the per-item hook, whose error names the index."""
    per_item = conv.get_structure_hook(Sequence[int])

    def structure_int_column(value: Any, type_: Any) -> Any:
        if type(value) in (list, tuple):
            column = int64_array(value)
            if column is not None:
                return column
        return per_item(value, type_)

    return structure_int_column


_INT_ONLY = frozenset({int})
_NUMBER = (int, float)
_SCALAR = (int, float, str)


def _structure_resource_value(value: Any, _: Any) -> ResourceValue:
    """``int | float | str``, kept exactly as given."""
    if type(value) in _SCALAR:
        scalar: ResourceValue = value
        return scalar
    raise _mismatch("a number or a string", value)


def _structure_scale(value: Any, _: Any) -> Scale:
    """A number, a string (callable name), or a list of numbers (as a tuple)."""
    if type(value) in _SCALAR:
        scale: Scale = value
        return scale
    if type(value) in (list, tuple):
        errors: list[Exception] = []
        for i, item in enumerate(value):
            if type(item) not in _NUMBER:
                errors.append(_note_index(_mismatch("a number", item), i, float | int))
        if errors:
            raise IterableValidationError("While structuring a scale list", errors, tuple)
        return tuple(value)
    raise _mismatch("a number, a list of numbers or a callable name", value)


# --- containers ------------------------------------------------------------------------


def _is_tuple(t: Any) -> bool:
    return t is tuple or get_origin(t) is tuple


def _is_page(t: Any) -> bool:
    """``Sequence[TaskRow]`` or ``Sequence[EdgeRow]``: a page of rows (a tuple or a
    ``RowPage``), written and read as an array of row objects, like a tuple of them."""
    return get_origin(t) is Sequence and get_args(t)[0] in (TaskRow, EdgeRow)


def _as_row_tuple(t: Any) -> Any:
    row_cls: Any = get_args(t)[0]
    return tuple[row_cls, ...]


def _is_dict(t: Any) -> bool:
    return t is dict or get_origin(t) in (dict, Mapping)  # read-only payloads are Mappings


def _make_tuple_structure(t: Any, conv: JsonConverter) -> _Hook:
    """``tuple[X, ...]`` and ``tuple[A, B, ...]`` from a JSON array, with indexed errors."""
    args = get_args(t)
    if not args or (len(args) == 2 and args[1] is Ellipsis and args[0] is Any):

        def structure_any_tuple(value: Any, _: Any) -> tuple[Any, ...]:
            if type(value) not in (list, tuple):
                raise _mismatch("an array", value)
            return tuple(value)

        return structure_any_tuple

    if len(args) == 2 and args[1] is Ellipsis:
        item_type = args[0]
        item_hook = conv.get_structure_hook(item_type)

        def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
            if type(value) not in (list, tuple):
                raise _mismatch("an array", value)
            if item_type is int and ints_only(value):
                return tuple(value)  # checked in C (a summary lists every task id)
            out: list[Any] = []
            errors: list[Exception] = []
            for i, item in enumerate(value):
                try:
                    out.append(item_hook(item, item_type))
                except Exception as exc:
                    errors.append(_note_index(exc, i, item_type))
            if errors:
                raise IterableValidationError(f"While structuring {t!r}", errors, t)
            return tuple(out)

        return structure_tuple

    hooks = [(a, conv.get_structure_hook(a)) for a in args]
    size = len(args)

    def structure_fixed_tuple(value: Any, _: Any) -> tuple[Any, ...]:
        if type(value) not in (list, tuple) or len(value) != size:
            raise _mismatch(f"an array of {size} items", value)
        out: list[Any] = []
        errors: list[Exception] = []
        for i, ((item_type, hook), item) in enumerate(zip(hooks, value, strict=True)):
            try:
                out.append(hook(item, item_type))
            except Exception as exc:
                errors.append(_note_index(exc, i, item_type))
        if errors:
            raise IterableValidationError(f"While structuring {t!r}", errors, t)
        return tuple(out)

    return structure_fixed_tuple


def _make_dict_structure(t: Any, conv: JsonConverter) -> _Hook:
    """``dict[K, V]`` from a JSON object, with keyed errors."""
    key_type, val_type = get_args(t) or (Any, Any)
    key_hook = conv.get_structure_hook(key_type)
    val_hook = conv.get_structure_hook(val_type)

    def structure_dict(value: Any, _: Any) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise _mismatch("an object", value)
        out: dict[Any, Any] = {}
        errors: list[Exception] = []
        for k, v in value.items():
            try:
                out[key_hook(k, key_type)] = val_hook(v, val_type)
            except Exception as exc:
                errors.append(_note_index(exc, k, val_type))
        if errors:
            raise IterableValidationError(f"While structuring {t!r}", errors, t)
        return out

    return structure_dict


def _make_attrs_structure(cl: Any, conv: JsonConverter) -> _Hook:
    """An attrs class from a JSON object; unknown keys are rejected."""
    inner = make_dict_structure_fn(cl, conv)

    def structure_attrs(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _mismatch("an object", value)
        return inner(value, cl)

    return structure_attrs


def _make_tuple_unstructure(t: Any, conv: JsonConverter) -> Callable[[Any], Any]:
    """Tuples become lists, items unstructured by their declared type when it is known."""
    args = get_args(t)
    if len(args) == 2 and args[1] is Ellipsis and args[0] is not Any:
        item_hook = conv.get_unstructure_hook(args[0])
        if item_hook is identity:  # ints, strings: the items are their own JSON (a list in C)
            return list
        return lambda value: [item_hook(item) for item in value]
    if args and Ellipsis not in args:
        hooks = [conv.get_unstructure_hook(a) for a in args]
        return lambda value: [h(item) for h, item in zip(hooks, value, strict=True)]
    return lambda value: [conv.unstructure(item) for item in value]


def _make_dict_unstructure(t: Any, conv: JsonConverter) -> Callable[[Any], Any]:
    """Dicts come out with sorted keys, so even ``unstructure`` output is byte-stable."""
    _, val_type = get_args(t) or (Any, Any)
    val_hook = conv.get_unstructure_hook(val_type) if val_type is not Any else conv.unstructure
    return lambda value: {k: val_hook(value[k]) for k in sorted(value)}


# --- tagged unions ---------------------------------------------------------------------


def _configure_tagged(
    conv: JsonConverter, union: Any, name: str, members: tuple[type, ...]
) -> None:
    """``union`` as an object with ``"type": "<ClassName>"``; clear errors for bad tags."""
    for cl in members:
        if TAG in attrs.fields_dict(cl):
            raise TypeError(f"{cl.__name__} has a field named {TAG!r}, which is the union tag")
    configure_tagged_union(union, conv, tag_name=TAG)
    tagged_structure = conv.get_structure_hook(union)
    tagged_unstructure = conv.get_unstructure_hook(union)
    known = {cl.__name__ for cl in members}
    expected = ", ".join(sorted(known))

    def structure_union(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _mismatch(f"an object with a {TAG!r} tag", value)
        if TAG not in value:
            exc: Exception = KeyError(TAG)
        elif type(value[TAG]) is not str or value[TAG] not in known:
            exc = _Mismatch(f"unknown {name} type {_show(value[TAG])}; expected one of: {expected}")
        else:
            return tagged_structure(value, union)
        raise ClassValidationError(f"While structuring {name}", [_note_field(exc, TAG, str)], union)

    def unstructure_union(value: Any) -> dict[str, Any]:
        if type(value) not in members:
            raise TypeError(f"{type(value).__name__} is not a member of {name}")
        out: dict[str, Any] = tagged_unstructure(value)
        return {TAG: out.pop(TAG), **out}

    conv.register_structure_hook_func(lambda t: t is union, structure_union)
    conv.register_unstructure_hook_func(lambda t: t is union, unstructure_union)


def _make_converter() -> JsonConverter:
    conv = make_converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_unstructure_hook(float, float)
    # Function hooks registered later take precedence over the preconf union passthrough.
    conv.register_structure_hook_func(lambda t: t == ResourceValue, _structure_resource_value)
    conv.register_structure_hook_func(lambda t: t == Scale, _structure_scale)
    conv.register_structure_hook_factory(_is_tuple, lambda t: _make_tuple_structure(t, conv))
    conv.register_structure_hook_factory(_is_page, lambda t: _make_tuple_structure(_as_row_tuple(t), conv))
    conv.register_structure_hook_factory(_is_dict, lambda t: _make_dict_structure(t, conv))
    conv.register_structure_hook_factory(attrs.has, lambda t: _make_attrs_structure(t, conv))
    int_column = _make_int_column_structure(conv)
    conv.register_structure_hook_func(lambda t: t == Sequence[int], int_column)
    conv.register_unstructure_hook_factory(_is_tuple, lambda t: _make_tuple_unstructure(t, conv))
    conv.register_unstructure_hook_factory(
        _is_page, lambda t: _make_tuple_unstructure(_as_row_tuple(t), conv)
    )
    conv.register_unstructure_hook_factory(_is_dict, lambda t: _make_dict_unstructure(t, conv))
    _configure_tagged(conv, Event, "Event", EVENT_TYPES)
    _configure_tagged(conv, Command, "Command", COMMAND_TYPES)
    return conv


#: The configured converter. Prefer the functions below: they turn errors into CodecError.
converter: JsonConverter = _make_converter()

_UNION_OF: dict[type, Any] = {
    **{cl: Event for cl in EVENT_TYPES},
    **{cl: Command for cl in COMMAND_TYPES},
}


# --- errors ----------------------------------------------------------------------------


def _describe(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _Mismatch | SwarmfoldError):
        text = str(exc)
    elif isinstance(exc, KeyError):
        text = "required field missing"
    elif isinstance(exc, ForbiddenExtraKeysError):
        text = "unknown field(s): " + ", ".join(sorted(exc.extra_fields))
    else:
        text = f"{format_exception(exc, type_)}: {exc}"
    return text + _SEP


def _codec_error(exc: BaseException) -> CodecError:
    lines = []
    for raw in transform_error(exc, "$", _describe):
        description, _, path = raw.partition(_SEP + " @ ")
        lines.append(f"{path}: {description}")
    return CodecError(lines)


_DECODE_ERRORS = (BaseValidationError, ValueError, TypeError, KeyError, SwarmfoldError)


# --- public API ------------------------------------------------------------------------


def unstructure(obj: Any) -> Any:
    """Plain JSON data (dicts, lists, str, int, float, bool, None) for any core value.

    Events and commands carry their ``"type"`` tag even when passed as a member class.
    """
    return converter.unstructure(obj, unstructure_as=_UNION_OF.get(type(obj)))


@overload
def structure(data: Any, cls: type[T]) -> T: ...
@overload
def structure(data: Any, cls: Any) -> Any: ...
def structure(data: Any, cls: Any) -> Any:
    """``data`` (as from :func:`unstructure` or ``json.loads``) as a ``cls``; or CodecError.

    ``cls`` may be ``Event``, ``Command``, or a member class; a member accepts its own tag.
    """
    union = _UNION_OF.get(cls)
    if union is not None and isinstance(data, Mapping) and TAG in data:
        if data[TAG] != cls.__name__:
            raise CodecError([f"$.{TAG}: expected {cls.__name__!r}, got {_show(data[TAG])}"])
        data = {k: v for k, v in data.items() if k != TAG}
    try:
        return converter.structure(data, cls)
    except _DECODE_ERRORS as exc:
        raise _codec_error(exc) from exc


def to_json(obj: Any) -> str:
    """Canonical compact JSON: sorted keys, no spaces; equal values give equal bytes."""
    return json.dumps(unstructure(obj), sort_keys=True, separators=(",", ":"))


@overload
def from_json(text: str | bytes, cls: type[T]) -> T: ...
@overload
def from_json(text: str | bytes, cls: Any) -> Any: ...
def from_json(text: str | bytes, cls: Any) -> Any:
    """Parse ``text`` and structure it as ``cls``; CodecError on bad JSON or bad data."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CodecError([f"$: invalid JSON: {exc}"]) from exc
    except RecursionError:
        raise CodecError(["$: invalid JSON: nested too deeply to decode"]) from None
    return structure(data, cls)


def event_to_dict(e: Event) -> dict[str, Any]:
    """An event as a JSON object with its ``"type"`` tag."""
    out: dict[str, Any] = converter.unstructure(e, unstructure_as=Event)
    return out


def event_from_dict(d: Any) -> Event:
    """The event a tagged JSON object describes; CodecError otherwise."""
    result: Event = structure(d, Event)
    return result


def command_to_dict(c: Command) -> dict[str, Any]:
    """A command as a JSON object with its ``"type"`` tag."""
    out: dict[str, Any] = converter.unstructure(c, unstructure_as=Command)
    return out


def command_from_dict(d: Any) -> Command:
    """The command a tagged JSON object describes; CodecError otherwise."""
    result: Command = structure(d, Command)
    return result
