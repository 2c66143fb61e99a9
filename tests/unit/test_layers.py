"""The house rules of ``docs/architecture.md``, read from the code: who may import whom.

Each package of ``okta_bridge`` sits on a layer and may import only its own package or lower
layers; two packages on one layer (the bridge's ``request`` and the ``rotation`` function) never
import each other. The rules count deferred imports too (a function-body import is still a
dependency, only a later one). ``okta_bridge`` is what ships to Lambda: it never imports
``okta_bridge_dev`` or a library that is not in the Lambda zip.
"""

from __future__ import annotations

import sys

import pytest

from tests.support.imports import Import, graph, modules

# Lower numbers are lower layers. Packages and top-level modules of okta_bridge.
LAYERS = {
    "okta_bridge": 0,  # the package itself: __version__ only
    "okta_bridge.errors": 0,
    "okta_bridge.logs": 0,
    "okta_bridge.config": 2,
    "okta_bridge.metrics": 3,
    "okta_bridge.tracing": 3,
    "okta_bridge.transport": 4,
    "okta_bridge.secret": 5,
    "okta_bridge.auth": 6,
    "okta_bridge.request": 7,
    "okta_bridge.rotation": 7,
    "okta_bridge.ops": 8,
    "okta_bridge.handler": 9,
}
# Parsers that Settings composes, so that configuration is parsed once into typed objects: they
# sit below config and import only errors and the standard library.
CONFIG_PARSERS = {
    "okta_bridge.request.callers": 1,
    "okta_bridge.request.policy": 1,
    "okta_bridge.transport.tls": 1,
}
# What the Lambda zip holds besides okta_bridge (pyproject's runtime dependencies).
RUNTIME_LIBRARIES = {"boto3", "botocore", "cryptography", "jwt", "opentelemetry", "urllib3"}


def _home(module: str) -> str:
    """The entry of LAYERS that ``module`` belongs to (its package, or itself at top level)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def layer(module: str) -> int:
    return CONFIG_PARSERS.get(module, LAYERS[_home(module)])


def _internal(found: Import) -> bool:
    return found.imported == "okta_bridge" or found.imported.startswith("okta_bridge.")


RUNTIME_IMPORTS = [found for found in graph("okta_bridge") if _internal(found)]


def test_every_module_of_okta_bridge_has_a_layer() -> None:
    assert sorted(m for m in modules("okta_bridge") if _home(m) not in LAYERS) == []


@pytest.mark.parametrize("found", RUNTIME_IMPORTS, ids=lambda f: f"{f.importer}->{f.imported}")
def test_a_module_imports_only_its_own_package_or_lower_layers(found: Import) -> None:
    if _home(found.importer) == _home(found.imported) and found.importer not in CONFIG_PARSERS:
        return
    assert layer(found.imported) < layer(found.importer) or (
        layer(found.imported) == layer(found.importer) == 0
    ), f"{found.importer}:{found.line} imports {found.imported} (layer {layer(found.imported)})"


def test_request_and_rotation_never_import_each_other() -> None:
    crossing = [
        f"{f.importer}:{f.line} -> {f.imported}"
        for f in RUNTIME_IMPORTS
        if {_home(f.importer), _home(f.imported)} == {"okta_bridge.request", "okta_bridge.rotation"}
    ]
    assert crossing == []


def test_config_parsers_import_only_errors() -> None:
    extra = [
        f"{f.importer}:{f.line} -> {f.imported}"
        for f in RUNTIME_IMPORTS
        if f.importer in CONFIG_PARSERS and f.imported != "okta_bridge.errors"
    ]
    assert extra == []


def test_okta_bridge_imports_only_what_the_lambda_zip_holds() -> None:
    """Never the local stack or the release tooling, never a dev-only library: either would
    be an ImportError in Lambda on the first call that reaches the line."""
    stdlib = sys.stdlib_module_names
    outside = sorted(
        {
            f"{f.importer}:{f.line} -> {f.imported}"
            for f in graph("okta_bridge")
            if not _internal(f)
            and not f.typing_only
            and (top := f.imported.partition(".")[0]) not in stdlib
            and top not in RUNTIME_LIBRARIES
            and top != "__future__"
        }
    )
    assert outside == []


def test_the_module_graph_has_no_cycle() -> None:
    """Among load-time imports: a cycle makes import order matter and hides a missing layer."""
    edges: dict[str, set[str]] = {}
    for found in RUNTIME_IMPORTS:
        if not found.deferred and found.imported != found.importer:
            edges.setdefault(found.importer, set()).add(found.imported)
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1 and not cycle:
                cycle.extend([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycle == []
