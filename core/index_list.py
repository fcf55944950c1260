"""Lists of task indexes that keep their numpy form.

A status group's indexes are read from several big columns through numpy (its statuses,
array ids, places, downstream rows); each read converting the same Python list again costs
about 13 µs a thousand indexes at a million tasks. An ``IndexList`` is converted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


class IndexList(list[int]):
    """A list of task indexes that keeps its numpy array (given, or made on first use).
    Never changed once built: the array would no longer match."""

    __slots__ = ("_array",)
    _array: npt.NDArray[np.intp]

    @classmethod
    def of_array(cls, array: npt.NDArray[Any]) -> IndexList:
        """The indexes of an integer ``array``, keeping it (as ``intp``)."""
        indexes = cls(array.tolist())
        indexes._array = array.astype(np.intp, copy=False)
        return indexes


def index_array(indexes: Sequence[int] | npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """``indexes`` as an ``intp`` array: an ``IndexList``'s own (made once), else converted."""
    if type(indexes) is IndexList:
        array: npt.NDArray[np.intp] | None = getattr(indexes, "_array", None)
        if array is None or len(array) != len(indexes):
            array = indexes._array = np.asarray(indexes, dtype=np.intp)
        return array
    return np.asarray(indexes, dtype=np.intp)


__all__ = ["IndexList", "index_array"]
