"""Models of how common server stacks turn a raw request-target path into the path they route.

Why: the bridge checks a caller's path against an allow-list and forwards it; if the server
behind it resolves that path differently (``/v1/items/..;/..;/admin/keys`` is ``/admin/keys`` to
Tomcat), the allow-list is bypassed. These pure functions let a test ask "would any common
stack route this path to a protected resource?" without running those stacks.

Each model takes the path part of a request-target exactly as it would stand on the request
line (an absolute-form target is reduced to its path, as every modelled server does) and returns
the path the server routes, or None where that server answers 400 outright. Conventions:

- Characters that cannot stand unencoded on a request line (space, controls, DEL, non-ASCII)
  are read as if the client had percent-encoded them as UTF-8, which is what a client (and the
  bridge) does; only ``node`` sees them raw, because the WHATWG parser strips tabs and newlines
  before anything else.
- Bytes that are not UTF-8 are kept as lone surrogates (``surrogateescape``), never dropped.
- Where a real server is configurable or differs across versions, the model takes the reading
  that resolves *more* paths to somewhere else (merge ``//`` before ``..``, ``..`` above the root
  stays at the root, trailing slash ignored...): the corpus tests want to over-report bypasses,
  never miss one. Each docstring says where a model is stricter than some deployment.

Sources: Orange Tsai, "Breaking Parser Logic!" (Black Hat USA 2018); Orange Tsai & Splitline,
"WorstFit: Unveiling Hidden Transformers in Windows ANSI" (Black Hat Europe 2024); OWASP, "Path
Traversal"; the WHATWG URL Standard; Go's net/http and net/url documentation; the Apache Tomcat
documentation (HTTP connector, system properties) and CoyoteAdapter.normalize; nginx's
ngx_http_parse_complex_uri. The nginx and Tomcat rules were checked against their source (via a
code search); the others are written from those documents as recalled.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Literal

__all__ = [
    "MODELS",
    "Normalizer",
    "all_normalisations",
    "aspnet",
    "go",
    "nginx",
    "node",
    "servlet",
]

Normalizer = Callable[[str], str | None]

_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODED_SLASH = re.compile(r"%(?:2[Ff]|5[Cc])")
_IIS_ESCAPE = re.compile(r"%[uU]([0-9A-Fa-f]{4})|%([0-9A-Fa-f]{2})")
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
_WHATWG_DOUBLE_DOT = frozenset({"..", ".%2e", "%2e.", "%2e%2e"})
_WHATWG_SINGLE_DOT = frozenset({".", "%2e"})
# WHATWG path percent-encode set: C0 controls, space, '"', '#', '<', '>', '?', '`', '{', '}' and
# everything above U+007E ('#' and '?' never reach it: they end the path).
_WHATWG_PATH_ENCODE = frozenset(' "<>`{}')
# Windows "best-fit" (WorstFit) folds that NFKC does not already make.
_BEST_FIT = str.maketrans({"\u2215": "/", "\u2044": "/", "\u2216": "\\", "\u29f5": "\\"})


# -- shared steps ---------------------------------------------------------------------------


def _wire(raw: str) -> str:
    """``raw`` with what cannot stand unencoded on a request line percent-encoded as UTF-8."""
    out: list[str] = []
    for char in raw:
        if char <= " " or char >= "\x7f":
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass")))
        else:
            out.append(char)
    return "".join(out)


def _origin_form(target: str) -> str:
    """The path of an absolute-form target (``http://host/p`` is ``/p``); others unchanged."""
    absolute = _ABSOLUTE_FORM.match(target)
    if absolute is None:
        return target
    return target[absolute.end() :] or "/"


def _cut(path: str, terminators: str) -> str:
    """``path`` up to the first of ``terminators`` (the query and fragment delimiters)."""
    for index, char in enumerate(path):
        if char in terminators:
            return path[:index]
    return path


def _percent_decode(text: str) -> bytes | None:
    """One strict round of ``%XX`` decoding of an ASCII string; None on a malformed escape."""
    if _BAD_ESCAPE.search(text):
        return None
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text).encode("latin-1")


def _resolve(segments: Iterable[str]) -> list[str]:
    """Drop empty and ``.`` segments, let ``..`` remove the previous one (none: stay at root)."""
    resolved: list[str] = []
    for segment in segments:
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment not in ("", "."):
            resolved.append(segment)
    return resolved


# -- the models -----------------------------------------------------------------------------


def servlet(raw: str, *, encoded_slash: Literal["reject", "decode"] = "reject") -> str | None:
    """Tomcat (or Jetty) in front of Spring MVC, default settings.

    Why it matters: path parameters make ``..;/`` a parent segment that no URL-level check sees
    (Orange Tsai, "Breaking Parser Logic!", Black Hat USA 2018). Steps, as Tomcat's CoyoteAdapter
    does them (Tomcat HTTP connector docs, ``encodedSolidusHandling``, ``ALLOW_BACKSLASH``):
    strip every ``;...`` parameter from each raw segment (so ``%3B`` survives as a literal
    ``;``), decode once as UTF-8 (bad escape, bad UTF-8 or a decoded NUL: 400), merge ``//``
    *before* resolving ``.`` and ``..`` (so ``/a/b/..//../x`` is ``/x``), keep ``..`` above the
    root at the root (Tomcat answers 400 there; Spring behind other containers does not) and
    drop a trailing slash (Spring 5 trailing-slash match).

    ``encoded_slash="reject"`` (the default, as Tomcat's): ``%2F`` or ``%5C`` anywhere is a 400.
    ``"decode"``: ``%2F`` becomes a separator before dot segments are resolved (Tomcat with
    ``encodedSolidusHandling="decode"``); this is what ``SampleApi(routing="servlet")`` does. A
    raw or decoded ``\\`` stays a literal character (Jetty; Tomcat's default rejects a raw one
    and ``ALLOW_BACKSLASH=true`` makes it a separator, which ``aspnet`` covers).
    """
    path = _cut(_origin_form(_wire(raw)), "?#")
    if not path.startswith("/"):
        return None
    segments = [segment.partition(";")[0] for segment in path.split("/")]
    if encoded_slash == "reject" and any(_ENCODED_SLASH.search(s) for s in segments):
        return None
    data = _percent_decode("/".join(segments))
    if data is None or b"\x00" in data:
        return None
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "/" + "/".join(_resolve(decoded.split("/")))


def nginx(raw: str) -> str | None:
    """nginx (Linux build) with ``merge_slashes on``, the default, as ``$uri`` / locations see it.

    Why it matters: nginx decodes before it resolves, so ``%2e%2e%2f`` climbs; a proxy that
    forwards the raw target to a backend that resolves differently is the classic split
    (Orange Tsai, Black Hat USA 2018; OWASP Path Traversal). From ngx_http_parse_complex_uri:
    a raw ``?`` or ``#`` ends the path; every ``%XX`` is decoded and the decoded byte is parsed
    as if it had been raw (``%2F`` is a separator, ``%2E`` a dot), except that a decoded ``%``,
    ``#`` or ``?`` is a literal character and a decoded NUL or a malformed escape is a 400;
    slashes are merged; ``.`` and ``..`` are resolved, and ``..`` above the root is a 400;
    ``;`` and ``\\`` are ordinary characters (``\\`` is a separator only in Windows builds).
    A trailing slash is kept (``location = /a`` does not match ``/a/``).
    """
    path = _cut(_origin_form(_wire(raw)), "?#")
    if not path.startswith("/"):
        return None
    data = _percent_decode(path)
    if data is None or b"\x00" in data:
        return None
    segments = data.decode("utf-8", "surrogateescape").split("/")
    resolved: list[str] = []
    for segment in segments:
        if segment == "..":
            if not resolved:
                return None
            resolved.pop()
        elif segment not in ("", "."):
            resolved.append(segment)
    trailing = segments[-1] in ("", ".", "..")
    if not resolved:
        return "/"
    return "/" + "/".join(resolved) + ("/" if trailing else "")


def _whatwg_encode(char: str) -> str:
    if char < " " or char in _WHATWG_PATH_ENCODE or char > "~":
        return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return char


def _whatwg_path_input(raw: str) -> str | None:
    """What the WHATWG parser reads as the path (and after it): input cleaned, scheme and
    authority dropped; None for a non-special scheme (an opaque path no server routes)."""
    text = raw.strip("".join(map(chr, range(0x21))))
    text = text.replace("\t", "").replace("\n", "").replace("\r", "")
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", text)
    if scheme is not None:
        if scheme.group(1).lower() not in _SPECIAL_SCHEMES:
            return None
        text = "//" + text[scheme.end() :].lstrip("/\\")
    authority = re.match(r"[/\\]{2}[^/\\?#]*", text)
    return text[authority.end() :] if authority else text


def _whatwg_pathname(raw: str) -> str | None:
    """``new URL(raw, "http://localhost/").pathname`` for the inputs a server can meet."""
    text = _whatwg_path_input(raw)
    if text is None:
        return None
    path: list[str] = []
    buffer = ""
    index = 1 if text[:1] in ("/", "\\") else 0
    while True:
        char = text[index] if index < len(text) else ""
        if char in ("", "/", "\\", "?", "#"):
            separator = char in ("/", "\\")
            if buffer.lower() in _WHATWG_DOUBLE_DOT:
                if path:
                    path.pop()
                if not separator:
                    path.append("")
            elif buffer.lower() in _WHATWG_SINGLE_DOT:
                if not separator:
                    path.append("")
            else:
                path.append(buffer)
            buffer = ""
            if not separator:
                break
        else:
            buffer += _whatwg_encode(char)
        index += 1
    return "/" + "/".join(path)


def _decode_uri_component(text: str) -> str | None:
    """JavaScript's ``decodeURIComponent``: None where it throws ``URIError``."""
    if _BAD_ESCAPE.search(text):
        return None
    try:
        return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text).encode("latin-1").decode()
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def node(raw: str) -> str | None:
    """Node.js with Express, where the path is read through ``new URL(req.url, base)``.

    Why it matters: the WHATWG URL Standard resolves ``%2e`` and ``%2E`` as dots (``.%2e`` is
    ``..``), treats ``\\`` as ``/`` for http(s) URLs and silently removes tabs and newlines
    anywhere in the input (so ``.<TAB>.`` is ``..``), none of which RFC 3986 does. Steps:
    WHATWG parsing (leading/trailing C0 and spaces stripped, ``//host`` and absolute forms lose
    their authority, ``//`` kept as an empty segment, ``..`` above the root stays at the root),
    then one ``decodeURIComponent`` of the pathname as Express applies to route parameters (a
    ``URIError``, e.g. bad UTF-8 or ``%u``, is a 400), then Express's default routing, which is
    case-insensitive (the result is lower-cased) and not strict (one trailing slash ignored).
    Express matches static routes on the still-encoded path, so decoding the whole pathname
    (``%2F`` included) over-reports, on purpose.
    """
    pathname = _whatwg_pathname(raw)
    if pathname is None:
        return None
    decoded = _decode_uri_component(pathname)
    if decoded is None:
        return None
    if len(decoded) > 1 and decoded.endswith("/"):
        decoded = decoded[:-1]
    return decoded.lower()


def go(raw: str) -> str | None:
    """Go's net/http server and ``http.ServeMux``.

    Why it matters: ``url.ParseRequestURI`` decodes the whole path into ``URL.Path``, ``%2F``
    included, and ServeMux cleans that decoded path with ``path.Clean`` (answering a redirect to
    the clean path, which a following client then gets: modelled as reaching it). Go's net/http
    and net/url docs: the request-target is ``/path`` or an absolute URL (anything else: 400),
    the query starts at the first ``?``, a ``#`` is *not* special (``ParseRequestURI`` assumes
    no fragment, so it stays in the path), a malformed escape is a 400, decoded bytes are kept
    as they are (no UTF-8 check, NUL allowed); ``path.Clean`` merges ``//``, resolves ``.`` and
    ``..`` (above the root: the root) and ServeMux keeps a trailing slash. ``;`` and ``\\`` are
    ordinary characters.
    """
    path = _cut(_origin_form(_wire(raw)), "?")
    if not path.startswith("/"):
        return None
    data = _percent_decode(path)
    if data is None:
        return None
    decoded = data.decode("utf-8", "surrogateescape")
    cleaned = "/" + "/".join(_resolve(decoded.split("/")))
    if decoded.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _iis_unescape(path: str) -> str:
    """Decode ``%uXXXX`` (IIS) and ``%XX``; malformed escapes stay literal, as .NET leaves them.

    Bytes are read as UTF-8 *including overlong forms* (``%c0%ae`` is ``.``, ``%c1%9c`` is
    ``\\``: old IIS and other lenient decoders accepted them); any other invalid byte is read
    as Latin-1, as http.sys falls back to the ANSI code page.
    """
    pieces: list[str | bytes] = []
    last = 0
    for match in _IIS_ESCAPE.finditer(path):
        if match.start() > last:
            pieces.append(path[last : match.start()])
        if match.group(1) is not None:
            pieces.append(chr(int(match.group(1), 16)))
        else:
            pieces.append(bytes([int(match.group(2), 16)]))
        last = match.end()
    pieces.append(path[last:])
    out: list[str] = []
    pending = bytearray()
    for piece in pieces:
        if isinstance(piece, bytes):
            pending += piece
            continue
        out.append(_lenient_utf8(bytes(pending)))
        pending.clear()
        out.append(piece)
    out.append(_lenient_utf8(bytes(pending)))
    return "".join(out)


def _lenient_utf8(data: bytes) -> str:
    out: list[str] = []
    index = 0
    while index < len(data):
        lead = data[index]
        width = 2 if 0xC0 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4 if lead >= 0xF0 else 1
        tail = data[index + 1 : index + width]
        if width > 1 and len(tail) == width - 1 and all(0x80 <= b < 0xC0 for b in tail):
            code = lead & (0x7F >> width)
            for byte in tail:
                code = (code << 6) | (byte & 0x3F)
            out.append(chr(code) if code <= 0x10FFFF else chr(lead))
            index += width
        else:
            out.append(chr(lead))
            index += 1
    return "".join(out)


def _windows_segment(segment: str) -> str:
    """Windows drops trailing dots and spaces from a name; a name of only dots and spaces is
    read as ``.`` (one dot) or ``..`` (two or more: ``...`` and ``.. `` climb, conservatively)."""
    core = segment.rstrip(" .")
    if core or "." not in segment:
        return core
    return "." if segment.count(".") == 1 else ".."


def aspnet(raw: str) -> str | None:
    """IIS (http.sys) in front of ASP.NET Core, on Windows.

    Why it matters: Windows path semantics and IIS's decoders open the widest set of
    look-alikes (OWASP Path Traversal: ``..\\``, ``%5c``, ``%c0%af``, ``%u2215``; Orange Tsai &
    Splitline, "WorstFit", Black Hat Europe 2024: Unicode best-fit to ``/``, ``\\`` and ``.``).
    Steps: the query (``?``) and any ``#...`` are dropped; ``%uXXXX`` and ``%XX`` are decoded once
    (overlong UTF-8 accepted, malformed escapes kept); the result is NFKC-normalised and
    best-fit folded (U+FF0E and U+2025 to dots, U+FF0F and U+2215 to ``/``, U+FF3C and U+2216
    to ``\\``); a ``\\`` (raw, ``%5c`` or folded) is a ``/``; ``%2F`` is a separator (Kestrel
    keeps it encoded, IIS may not); each segment loses trailing dots and spaces; empty segments
    are merged, ``.`` and ``..`` resolved (above the root: the root), a trailing slash ignored,
    and the result lower-cased (Windows and ASP.NET routing are case-insensitive). Never a 400:
    IIS request filtering (double escaping, ``%00``) is configuration; the model assumes it off.
    Like every model here it decodes once, so ``%252e`` is not a dot: double-encoded payloads
    are aimed at a bridge that decodes a path before it re-encodes it.
    """
    path = _cut(_origin_form(_wire(raw)), "?#")
    decoded = _iis_unescape(path)
    folded = unicodedata.normalize("NFKC", decoded).translate(_BEST_FIT).replace("\\", "/")
    if not folded.startswith("/"):
        return None
    segments = (_windows_segment(segment) for segment in folded.split("/"))
    return ("/" + "/".join(_resolve(segments))).lower()


MODELS: dict[str, Normalizer] = {
    "servlet": servlet,
    "nginx": nginx,
    "node": node,
    "go": go,
    "aspnet": aspnet,
}
"""Every model by name, in a stable order."""


def all_normalisations(raw: str) -> dict[str, str | None]:
    """What each modelled server routes ``raw`` to (None: it answers 400)."""
    return {name: model(raw) for name, model in MODELS.items()}
