"""Value classes for the cold path: ``__slots__`` classes compared by value, shown without their
secrets.

Not dataclasses: defining one costs ~1 ms on a cold start (dataclasses generates and ``exec``s its
methods) and importing ``dataclasses`` brings ``inspect`` (ast, dis, tokenize: ~11 ms) that nothing
else on that path needs; the records that neither change nor hold a secret are named tuples, which
cost a fraction. Not named tuples where a record holds a secret or changes: a tuple hands its
fields to anything that iterates, indexes or serialises it (``json.dumps``, the redactor's walk
over a log entry, ``%`` formatting), past a repr that leaves them out. A subclass lists its fields
once, in ``_FIELDS`` (the ``__init__`` order), names the secrets in ``_HIDDEN``, and sets
``__slots__ = _FIELDS``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self


class Record:
    """Equality and hashing over ``_FIELDS``, a repr without ``_HIDDEN``, and ``_replace``."""

    __slots__ = ()
    _FIELDS: ClassVar[tuple[str, ...]] = ()
    _HIDDEN: ClassVar[frozenset[str]] = frozenset()  # never in repr: secrets

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self._FIELDS if name not in self._HIDDEN
        )
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def _replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (field names as keywords), as on a named tuple."""
        return type(self)(**{**dict(zip(self._FIELDS, self._values(), strict=True)), **changes})
