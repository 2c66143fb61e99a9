"""The one console of the release tooling and the CLI: where commands write, ask and spin.

Injectable (tests pass string buffers and scripted answers), and it decides how to write: ANSI
colour only on a terminal and never with ``NO_COLOR`` (https://no-color.org), wrapping only on a
terminal, a spinner only when standard error is a terminal, so piped output stays clean.
"""

from __future__ import annotations

import getpass
import itertools
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO

__all__ = ["STYLES", "Console", "Spinner", "isatty"]

STYLES = {"ok": "32", "failed": "1;31", "skipped": "33", "bold": "1"}


def isatty(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal (False for anything without ``isatty``)."""
    check = getattr(stream, "isatty", None)
    return bool(check()) if callable(check) else False


@dataclass
class Console:
    """Where commands write and read, and the environment that decides how."""

    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)
    ask: Callable[[str], str] = input
    ask_secret: Callable[[str], str] = getpass.getpass
    interactive: Callable[[], bool] = field(default_factory=lambda: sys.stdin.isatty)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def say(self, text: str = "") -> None:
        """A line of normal output."""
        print(text, file=self.out, flush=True)

    def error(self, text: str) -> None:
        """A line on standard error, prefixed ``error:`` (no stack trace: it is expected)."""
        print(f"error: {text}", file=self.err, flush=True)

    @property
    def tty(self) -> bool:
        """Whether standard output is a terminal (a person reads it, not a pipe)."""
        return isatty(self.out)

    @property
    def colour(self) -> bool:
        """ANSI colour only on a terminal, and never with NO_COLOR set."""
        return self.tty and not self.environ.get("NO_COLOR")

    def paint(self, text: str, style: str) -> str:
        """``text`` in ``style`` (a key of ``STYLES``) when colour is on, else unchanged."""
        code = STYLES.get(style)
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code else text

    def width(self) -> int | None:
        """The terminal's width to wrap at; None (no wrapping) when piped."""
        return shutil.get_terminal_size().columns if self.tty else None

    def spinner(self, label: str) -> Spinner:
        """A spinner on standard error while a slow call runs (see ``Spinner``)."""
        return Spinner(self.err, label)


class Spinner:
    """A spinner with the elapsed seconds on standard error while a call runs, on a terminal
    only (piped output stays clean); erased when the call returns."""

    FRAMES = "|/-\\"

    def __init__(self, err: IO[str], label: str, *, interval: float = 0.1) -> None:
        self._err = err
        self._label = label
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> Spinner:
        if isatty(self._err):
            self._started = time.monotonic()
            self._draw(self.FRAMES[0])
            self._thread = threading.Thread(
                target=self._spin, name="okta-bridge:spinner", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=1.0)
            print("\r\x1b[2K", end="", file=self._err, flush=True)

    def _spin(self) -> None:
        for frame in itertools.cycle(self.FRAMES[1:] + self.FRAMES[0]):
            if self._stop.wait(self._interval):
                return
            self._draw(frame)

    def _draw(self, frame: str) -> None:
        elapsed = time.monotonic() - self._started
        print(f"\r{frame} {self._label} ({elapsed:.0f}s)", end="", file=self._err, flush=True)
