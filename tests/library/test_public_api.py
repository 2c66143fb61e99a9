"""The library's public face: what ``okta_bridge`` exports, that it is documented, and that a
consumer type-checks against it with ``mypy --strict`` (the package ships ``py.typed``)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import okta_bridge
from okta_bridge import Client, Response

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = sorted(name for name in okta_bridge.__all__ if name != "__version__")


def _members(cls: type) -> list[str]:
    """The public members a consumer sees (a named tuple's own ``count``/``index`` aside)."""
    inherited = set(dir(tuple)) if issubclass(cls, tuple) else set()
    return sorted(
        f"{cls.__name__}.{name}"
        for name, _ in inspect.getmembers(cls)
        if not name.startswith("_") and name not in inherited
    )


def _section(path: str, heading: str) -> str:
    text = (ROOT / path).read_text(encoding="utf-8")
    start = text.index(heading)
    level = heading.split(" ", 1)[0]
    end = text.find(f"\n{level} ", start + len(heading))
    return text[start : end if end != -1 else None]


DOCS = {
    "README.md": "## Use it as a library",
    "docs/guide.md": "### 4.10 Use it as a library",
    "docs/guide.zh-CN.md": "### 4.10 在自己的函数中作为库使用",
}


def test_the_public_names_are_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from okta_bridge import *", namespace)  # noqa: S102 - the star import a consumer writes
    assert sorted(n for n in namespace if n != "__builtins__") == sorted(okta_bridge.__all__)
    for name in PUBLIC:
        assert getattr(okta_bridge, name) is not None


def test_importing_the_package_does_not_load_the_client() -> None:
    """The bridge's and the rotation function's handlers import ``okta_bridge``: the library's
    face costs them nothing until it is used."""
    code = "import sys, okta_bridge.rotation.handler; print('okta_bridge.client' in sys.modules)"
    done = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("path", sorted(DOCS))
def test_every_public_name_is_documented(path: str) -> None:
    section = _section(path, DOCS[path])
    quoted = " ".join(re.findall(r"`([^`]+)`", section)) + section
    names = [*PUBLIC, *_members(Client), *_members(Response)]
    missing = [name for name in dict.fromkeys(names) if name not in quoted]
    assert missing == [], f"{path} does not document {missing}"


CONSUMER = textwrap.dedent(
    """
    from typing import Any

    from okta_bridge import BridgeError, Client, Response, UpstreamError

    client = Client.from_env()


    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        first: Response = client.get("/v1/items", params={"page": "2"}, context=context)
        status: int = first.status
        body: bytes = first.content
        items: list[Any] = []
        for page in client.paginate("/v1/items", context=context, max_pages=20):
            items.extend(page.json()["items"])
        try:
            client.request("POST", "/v1/orders", json={"n": 1}, idempotency_key="k-1")
        except UpstreamError as exc:
            code: str = exc.code
            return {"statusCode": exc.status, "code": code, "hint": exc.hint}
        except BridgeError:
            raise
        return {"statusCode": status, "count": len(items), "bytes": len(body)}
    """
)


def _mypy_strict(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - mypy of this venv on a file written by the test
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(path.parent / "cache"),
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=path.parent,
    )


def test_a_consumer_type_checks_with_mypy_strict(tmp_path: Path) -> None:
    consumer = tmp_path / "consumer.py"
    consumer.write_text(CONSUMER, encoding="utf-8")
    done = _mypy_strict(consumer)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_catches_a_misuse(tmp_path: Path) -> None:
    """The check above can fail: a wrong call is an error."""
    consumer = tmp_path / "wrong.py"
    consumer.write_text(
        "from okta_bridge import Client\n"
        "status: str = Client.from_env().get('/v1/items', params=3).status\n",
        encoding="utf-8",
    )
    done = _mypy_strict(consumer)
    assert done.returncode == 1
    assert "arg-type" in done.stdout
    assert "assignment" in done.stdout
