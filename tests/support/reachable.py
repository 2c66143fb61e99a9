"""What the bridge holds: every object reachable from a root through references, for the tests
that prove no secret, token or private key stays in it (SnapStart snapshots, KMS signing)."""

from __future__ import annotations

import gc
import types
from collections.abc import Callable, Iterator

# Followed no further: code and modules reach the whole process (the stack's own secrets too).
OPAQUE = (
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.CodeType,
    types.FrameType,
    type,
)


def reachable(
    *roots: object, stop: Callable[[object], bool] = lambda _obj: False
) -> Iterator[object]:
    """Each object reachable from ``roots`` once; ``stop`` marks objects not followed further
    (they are still yielded)."""
    seen: set[int] = set()
    todo: list[object] = list(roots)
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, types.MethodType):
            todo.append(obj.__self__)
        elif not isinstance(obj, OPAQUE) and not stop(obj):
            todo.extend(gc.get_referents(obj))


def reachable_text(*roots: object) -> list[str]:
    """Every str and bytes value reachable from ``roots`` (bytes decoded as latin-1)."""
    texts: list[str] = []
    for obj in reachable(*roots):
        if isinstance(obj, str):
            texts.append(obj)
        elif isinstance(obj, bytes | bytearray):
            texts.append(bytes(obj).decode("latin-1"))
    return texts
