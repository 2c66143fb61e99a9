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

from tests.support.imports import SRC, Import, graph, modules

# Lower numbers are lower layers. Packages and top-level modules of okta_bridge.
LAYERS = {
    "okta_bridge": 0,  # the package itself: __version__ only
    "okta_bridge.errors": 0,
    "okta_bridge.logs": 0,
    "okta_bridge.records": 0,  # value classes: __slots__, compared by value, secrets out of repr
    "okta_bridge.config": 2,
    "okta_bridge.metrics": 3,
    "okta_bridge.tracing": 3,
    "okta_bridge.transport": 4,
    "okta_bridge.secret": 5,
    "okta_bridge.auth": 6,
    "okta_bridge.delivery": 6,  # large answers to S3: signs with secret.sigv4, sends via transport
    "okta_bridge.fleet": 7,  # the shared token cache: DynamoDB and KMS for auth's tokens
    "okta_bridge.request": 8,
    "okta_bridge.rotation": 8,
    "okta_bridge.ops": 9,
    "okta_bridge.client": 10,  # the library's face: a bridge with public calls (SnapStart: ops)
    "okta_bridge.handler": 11,  # one consumer of the client
}
# The package's public face (``from okta_bridge import Client``) loads the client on first use
# (PEP 562 ``__getattr__``, and for type checkers under TYPE_CHECKING): no load-time import.
LAZY_EXPORTS = {("okta_bridge", "okta_bridge.client")}
# Parsers that Settings composes, so that configuration is parsed once into typed objects: they
# sit below config and import only errors (and records) and the standard library.
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
    if (found.importer, found.imported) in LAZY_EXPORTS and found.deferred:
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


def test_config_parsers_import_only_errors_and_records() -> None:
    extra = [
        f"{f.importer}:{f.line} -> {f.imported}"
        for f in RUNTIME_IMPORTS
        if f.importer in CONFIG_PARSERS
        and f.imported not in {"okta_bridge.errors", "okta_bridge.records"}
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


# -- okta_bridge_dev: three rooms -----------------------------------------------------------------

DEV_IMPORTS = graph("okta_bridge_dev")
LOCAL_STACK_LIBRARIES = ("moto", "werkzeug", "okta_bridge_dev.emulators")
# Where the CLI reaches the local stack, inside functions, with a message when it is absent.
# The local-stack scenarios (in a clone, not in the wheel) and the one door the CLI reaches them
# through, inside functions, with a message when they are absent.
LOCAL_SCENARIOS = ("okta_bridge_dev.cli.demo", "okta_bridge_dev.cli.rotate_local")
LOCAL_DOOR = "okta_bridge_dev.cli.local"


def _room(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _reaches(found: Import, *targets: str) -> bool:
    return any(found.imported == t or found.imported.startswith(f"{t}.") for t in targets)


def test_the_emulators_never_import_the_release_tooling_or_the_cli() -> None:
    crossing = [
        f"{f.importer}:{f.line} -> {f.imported}"
        for f in DEV_IMPORTS
        if _room(f.importer) == "okta_bridge_dev.emulators"
        and _reaches(f, "okta_bridge_dev.release", "okta_bridge_dev.cli")
    ]
    assert crossing == []


def test_the_release_tooling_never_imports_the_cli_or_the_local_stack() -> None:
    """What `okta-bridge deploy` runs must work from the wheel, where the local stack is not."""
    crossing = [
        f"{f.importer}:{f.line} -> {f.imported}"
        for f in DEV_IMPORTS
        if _room(f.importer) == "okta_bridge_dev.release"
        and _reaches(f, "okta_bridge_dev.cli", *LOCAL_STACK_LIBRARIES)
    ]
    assert crossing == []


def test_the_cli_reaches_the_local_stack_only_through_its_door_and_only_when_asked() -> None:
    crossing = [
        f"{f.importer}:{f.line} -> {f.imported}{' (deferred)' if f.deferred else ''}"
        for f in DEV_IMPORTS
        if _room(f.importer) == "okta_bridge_dev.cli"
        and f.importer not in LOCAL_SCENARIOS
        and _reaches(f, *LOCAL_STACK_LIBRARIES, *LOCAL_SCENARIOS)
        and not (f.importer == LOCAL_DOOR and f.deferred)
    ]
    assert crossing == []


def test_the_door_loads_the_scenarios_by_name_inside_its_functions() -> None:
    """``importlib.import_module`` in a function: the ast rule above cannot see it, so the door
    is read as text too (a top-level import of a scenario would fail in the wheel)."""
    source = (SRC / "okta_bridge_dev" / "cli" / "local.py").read_text(encoding="utf-8")
    for scenario in LOCAL_SCENARIOS:
        assert f'importlib.import_module("{scenario}")' in source
        assert f"import {scenario.rpartition('.')[2]}" not in source


# Each named in docs/architecture.md ("Files over ~400 lines") with the reason it stays whole.
LONG_FILES = {
    "okta_bridge_dev/emulators/okta/model.py": 430,
    "okta_bridge/auth/endpoint.py": 430,
    # The catalog of every code the caller can see, with its status and hint.
    "okta_bridge/errors.py": 450,
    # Every BRIDGE_* variable's parse and bounds in one module (configuration parsed once).
    "okta_bridge/config.py": 580,
}


def test_no_source_file_is_over_400_lines_unless_named_here() -> None:
    over = {}
    for path in sorted(SRC.rglob("*.py")):
        name = path.relative_to(SRC).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > LONG_FILES.get(name, 400):
            over[name] = lines
    assert over == {}
    documented = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in LONG_FILES:
        assert f"`{name.removeprefix('okta_bridge_dev/')}`" in documented, name
