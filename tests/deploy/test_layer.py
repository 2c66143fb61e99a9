"""``make layer``: dist/okta-bridge-layer.zip, and a function that uses only it (and the runtime's
boto3) against the local stack.

The layer is the function zip's content under ``python/`` (Lambda unpacks a layer in /opt and puts
/opt/python on the path), built by the same code: so the tests compare the two builds, check the
layer's own promises (layout, no boto3 and no dev code, python3.13 ``.pyc``, reproducible), and
run a consumer in a python3.13 whose path holds nothing but the stdlib, the layer and boto3.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import platform
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from okta_bridge_dev.cli import main as cli
from okta_bridge_dev.console import Console
from okta_bridge_dev.emulators.stack import LocalStack
from okta_bridge_dev.release import package, wheels
from tests.conftest import stack_fixture

from .conftest import REPO, find_python313

PY313 = find_python313()
pytestmark = pytest.mark.skipif(
    PY313 is None,
    reason="no CPython 3.13 found ($PY313, pyenv's 3.13.0 or python3.13 on PATH): the layer "
    "must be compiled by Lambda's python3.13",
)
HOST_ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
ELF_MACHINE = {"arm64": 183, "x86_64": 62}
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six")
"""What the python3.13 runtime provides (``wheels.RUNTIME_PROVIDED``'s boto3 share); not
urllib3, which botocore also needs: the layer ships it, as the function zip does."""

stack = stack_fixture()  # this module's own local stack


@dataclass(frozen=True)
class Layers:
    """Two arm64 builds (one by the CLI, with its printed summary), the host's, the function's."""

    first: package.BuildResult
    second: package.BuildResult
    summary: str
    host: package.BuildResult
    function: package.BuildResult

    def names(self, result: package.BuildResult | None = None) -> list[str]:
        with zipfile.ZipFile((result or self.first).zip.path) as archive:
            return archive.namelist()


def _build(work: Path, name: str, arch: str, layout: package.Layout) -> package.BuildResult:
    assert PY313 is not None
    return package.build(
        root=REPO,
        python=PY313,
        output=work / name / layout.output.name,
        build_dir=work / name / "build",
        arch=arch,
        layout=layout,
    )


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> Layers:
    assert PY313 is not None
    work = tmp_path_factory.mktemp("layer")
    out = io.StringIO()
    output = work / "cli" / "okta-bridge-layer.zip"
    argv = ["package", "--layer", "--python", PY313, "--output", str(output)]
    argv += ["--build-dir", str(work / "cli" / "build"), "--root", str(REPO)]
    code = cli.main(argv, console=Console(out=out, err=out))
    assert code == 0, out.getvalue()
    first = _build(work, "first", "arm64", package.LAYER)
    assert first.zip.path.read_bytes() == output.read_bytes()  # the CLI builds the same zip
    second = _build(work, "second", "arm64", package.LAYER)
    host = first if HOST_ARCH == "arm64" else _build(work, "host", HOST_ARCH, package.LAYER)
    function = _build(work, "function", "arm64", package.FUNCTION)
    return Layers(first, second, out.getvalue(), host, function)


def test_two_layer_builds_are_identical(layers: Layers) -> None:
    assert layers.first.zip.sha256 == layers.second.zip.sha256
    assert layers.first.zip.path.read_bytes() == layers.second.zip.path.read_bytes()
    assert layers.first.zip.sha256 == hashlib.sha256(layers.first.zip.path.read_bytes()).hexdigest()


def test_the_layer_holds_the_library_and_its_dependencies_under_python(layers: Layers) -> None:
    names = set(layers.names())
    assert {name.split("/", 1)[0] for name in names} == {"python"}
    for name in ("__init__.py", "client.py", "handler.py", "py.typed"):
        assert f"python/okta_bridge/{name}" in names
    for top in ("cryptography", "urllib3"):
        assert f"python/{top}/__init__.py" in names
    assert "python/jwt/__init__.py" not in names  # PyJWT is a dev dependency only (issue 18)
    assert any(n.startswith("python/cryptography/") and n.endswith(".so") for n in names)


def test_the_layer_has_no_boto3_no_dev_code_and_no_tests(layers: Layers) -> None:
    names = layers.names()
    tops = {name.split("/")[1] for name in names if name.count("/") > 1 or name.endswith(".py")}
    forbidden = {*wheels.RUNTIME_IMPORT_NAMES, "okta_bridge_dev", "tests", "moto", "benchmarks"}
    assert not tops & forbidden
    assert not [n for n in names if n.removeprefix("python/").startswith(("six.py", "boto"))]
    assert not any(n.endswith((".dist-info/RECORD", ".dist-info/INSTALLER")) for n in names)
    assert "python/certs/" not in names  # no CA bundle unless --ca-bundle


def test_the_layer_ships_exactly_what_the_function_zip_ships(layers: Layers) -> None:
    """One build decides both: same lock filter, same files, the layer's under python/."""
    assert layers.first.shipped == layers.function.shipped
    assert layers.first.left_out == layers.function.left_out
    assert [f"python/{n}" for n in layers.names(layers.function)] == [
        n for n in layers.names() if n != "python/"
    ]


def test_every_module_is_compiled_by_python313_for_opt_python(layers: Layers) -> None:
    names = layers.names()
    sources = [n for n in names if n.endswith(".py")]
    for source in sources:
        folder, _, module = source.rpartition("/")
        assert f"{folder}/__pycache__/{module[:-3]}.cpython-313.pyc" in names, source
    assert not [n for n in names if n.endswith(".pyc") and ".cpython-313." not in n]
    with zipfile.ZipFile(layers.first.zip.path) as archive:
        pyc = archive.read("python/okta_bridge/__pycache__/client.cpython-313.pyc")
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, source never checked
    assert b"/opt/python/okta_bridge/client.py" in pyc  # tracebacks read as in Lambda
    assert str(REPO).encode() not in pyc
    magic = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    found = subprocess.run(  # noqa: S603 - the python3.13 found above
        [str(PY313), "-c", magic], capture_output=True, text=True, check=True
    )
    assert pyc[:4].hex() == found.stdout  # python3.13's own .pyc format


@pytest.mark.parametrize("arch", sorted(ELF_MACHINE))
def test_the_native_libraries_are_built_for_the_layers_architecture(
    layers: Layers, arch: str
) -> None:
    result = layers.first if arch == "arm64" else layers.host
    if result.arch != arch:
        pytest.skip(f"this {HOST_ARCH} host builds the {arch} layer only in the first test")
    with zipfile.ZipFile(result.zip.path) as archive:
        core = next(n for n in archive.namelist() if n.endswith(".so") and "cryptography" in n)
        header = archive.read(core)[:20]
    assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[arch]


def test_the_summary_prints_size_file_count_and_layout(layers: Layers) -> None:
    summary = layers.summary
    assert "okta-bridge-layer.zip" in summary
    assert f"files     {layers.first.zip.files}" in summary
    assert f"({layers.first.zip.size:,} bytes;" in summary
    assert "layout    python/ (on the path at /opt/python)" in summary
    assert "left out  boto3, botocore" in summary
    assert layers.first.zip.files > 100


# -- a consumer function that has only the layer ------------------------------------------------

BRIDGE_HANDLER = """\
from okta_bridge.handler import lambda_handler


def handler(event, context):
    return lambda_handler(event, context)
"""
CLIENT_HANDLER = """\
from okta_bridge import Client

client = Client.from_env()


def handler(event, context):
    response = client.get(event["path"], params=event.get("query"), context=context)
    return {"statusCode": response.status, "body": response.json()}
"""
HANDLERS = {"bridge-handler": BRIDGE_HANDLER, "client": CLIENT_HANDLER}
"""A team's function file, each way: through the bridge's handler, and through the public
client. Both answer ``{"statusCode": ..., "body": {...}}`` to a direct event."""

BOOTSTRAP = '''\
"""Lambda's part: sys.path as the python3.13 runtime builds it for a function with one layer
(minus /var/task: the function file is loaded by path), then one direct invocation."""
import importlib.util, json, sys

layer, runtime, function = sys.argv[1:4]
sys.path[:] = [p for p in sys.path if p.startswith(sys.base_prefix)] + [layer, runtime]
stdlib = list(sys.path[:-2])


class Context:
    aws_request_id = "req-layer"
    function_name = "consumer"

    def get_remaining_time_in_millis(self):
        return 20_000


spec = importlib.util.spec_from_file_location("consumer", function)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
answer = module.handler({"path": "/v1/items", "query": {"page": "2"}}, Context())
origin = {
    name: sys.modules[name].__file__
    for name in ("okta_bridge", "jwt", "cryptography", "urllib3", "boto3", "botocore")
    if name in sys.modules
}
print(json.dumps({"answer": answer, "origin": origin, "path": sys.path, "stdlib": stdlib}))
'''


def runtime_packages(target: Path) -> Path:
    """A directory with the runtime's boto3 share, linked from this interpreter's packages."""
    target.mkdir()
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None, name
        assert spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source)
    return target


@pytest.mark.parametrize("source", ["default", "sdk"])
@pytest.mark.parametrize("handler", sorted(HANDLERS))
def test_a_function_using_only_the_layer_runs_against_the_local_stack(
    layers: Layers, stack: LocalStack, tmp_path: Path, handler: str, source: str
) -> None:
    """``source``: how the secret is read. By default a SigV4-signed POST through the layer's
    urllib3 (no boto3); ``sdk`` (BRIDGE_SECRET_SOURCE=sdk) through the runtime's boto3, which
    then runs on the layer's urllib3 (as in Lambda, where /opt/python comes first)."""
    assert PY313 is not None
    opt = tmp_path / "opt"
    with zipfile.ZipFile(layers.host.zip.path) as archive:
        archive.extractall(opt)  # as Lambda unpacks a layer into /opt
    runtime = runtime_packages(tmp_path / "runtime")
    function = tmp_path / "task" / "consumer.py"
    function.parent.mkdir()
    function.write_text(HANDLERS[handler])
    bootstrap = tmp_path / "bootstrap.py"
    bootstrap.write_text(BOOTSTRAP)
    # private_key_jwt: the client assertion is signed with the layer's cryptography (its
    # native library, built for this host), not only its urllib3.
    secret_id = stack.store_secret("jwt-es256", f"layer/{handler}/{source}")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        **stack.environment(secret_id),
        "BRIDGE_ALLOWED_PATHS": "/v1/items",
    }
    if source == "sdk":
        env["BRIDGE_SECRET_SOURCE"] = "sdk"
    stack.reset_counts()
    before = {p: p.read_bytes() for p in opt.rglob("*.pyc")}
    # -I: no PYTHON* variables, no user site, no script folder; -S: no site-packages;
    # -B: nothing written into this interpreter's packages (boto3 is linked from there).
    command = [PY313, "-I", "-S", "-B", str(bootstrap)]
    result = subprocess.run(  # noqa: S603 - the python3.13 found above, running our bootstrap
        [*command, str(opt / "python"), str(runtime), str(function)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    child = json.loads(result.stdout.splitlines()[-1])
    answer = child["answer"]
    assert answer["statusCode"] == 200, answer
    assert [item["id"] for item in answer["body"]["items"]] == list(range(11, 21))
    # The path was the stdlib, the layer and the runtime's boto3, nothing else.
    assert child["path"] == [*child["stdlib"], str(opt / "python"), str(runtime)]
    assert all(not p.endswith("site-packages") for p in child["stdlib"])
    for name in ("okta_bridge", "cryptography", "urllib3"):
        assert child["origin"][name].startswith(str(opt / "python")), (name, child["origin"])
    assert "jwt" not in child["origin"]  # the layer has no PyJWT, and signing needs none
    if source == "sdk":
        for name in ("boto3", "botocore"):
            assert child["origin"][name].startswith(str(runtime)), (name, child["origin"])
    assert stack.secrets_manager.counts["GetSecretValue"] == 1
    assert stack.okta.counts["token"] == 1
    assert {p: p.read_bytes() for p in opt.rglob("*.pyc")} == before  # used as shipped
