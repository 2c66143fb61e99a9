"""HTTP over verified TLS: deadlines, pools, retries, redirects and what each failure means.

Importing this package first defers urllib3's HTTP/2 opt-in module (see ``_defer_http2_opt_in``):
every module here imports urllib3, and this runs before any of them.
"""

from __future__ import annotations

import sys
import types
from importlib.machinery import PathFinder

# The names urllib3/http2/__init__.py defines: looking one up runs that file after all.
_HTTP2_NAMES = frozenset(
    {"inject_into_urllib3", "extract_from_urllib3", "orig_HTTPSConnection", "version", "typing"}
)


def _defer_http2_opt_in() -> None:
    """Register ``urllib3.http2`` without running its ``__init__`` until one of its names is used.

    urllib3.connection imports ``urllib3.http2.probe`` (a small cache), which runs the package's
    ``__init__``; that file imports ``importlib.metadata`` only to check h2's version in
    ``inject_into_urllib3``, the opt-in to HTTP/2 that the bridge never calls. Loading
    ``importlib.metadata`` (with zipfile, importlib.resources, email and inspect behind it)
    costs ~8 ms of every cold start. A lookup of any name the real ``__init__`` defines still
    runs it, so code in the same process that opts in to HTTP/2 gets urllib3's own behaviour.
    Anything unexpected (urllib3 already imported, another layout) leaves urllib3 untouched.
    """
    if "urllib3" in sys.modules or "urllib3.http2" in sys.modules:
        return
    package = PathFinder.find_spec("urllib3")
    locations = package.submodule_search_locations if package is not None else None
    spec = PathFinder.find_spec("urllib3.http2", list(locations or ()))
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return
    if PathFinder.find_spec("urllib3.http2.probe", list(spec.submodule_search_locations)) is None:
        return
    module = types.ModuleType(spec.name)
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = spec.name
    loader = spec.loader

    def __getattr__(name: str) -> object:  # noqa: N807 - PEP 562
        if name not in _HTTP2_NAMES:
            raise AttributeError(name)
        del module.__dict__["__getattr__"]
        loader.exec_module(module)
        return getattr(module, name)

    module.__dict__["__getattr__"] = __getattr__
    sys.modules[spec.name] = module


_defer_http2_opt_in()
