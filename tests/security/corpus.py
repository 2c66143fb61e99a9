"""Path-confusion payloads: paths a hostile caller can put in an event to reach what it must not.

Why: the allow-list (``/v1/data``, ``/v1/items``, ``/v1/items/*``, ``/v1/items/**``) is checked
on the bridge's reading of a path, but the API host routes *its own* reading. Each payload
starts with an allowed prefix and is built to be read as ``/admin/keys`` or ``/internal/config``
by some server stack (see ``tests.security.normalizers``), or by a bridge that decodes, strips or
re-parses a path before or after checking it. ``reaches_target`` says which modelled servers
would route a payload, sent verbatim, to a protected resource: a test that then finds nothing
served proves the bridge closed those doors, not that the corpus was harmless.

Families (Orange Tsai, "Breaking Parser Logic!", Black Hat USA 2018; OWASP Path Traversal;
Orange Tsai & Splitline, "WorstFit", Black Hat Europe 2024): servlet path parameters, encoded
and mixed-case dots, ``%3b``, double encoding, overlong UTF-8, IIS ``%u``, backslashes, encoded
slashes, slash runs, Windows trailing dots and spaces, Unicode look-alikes and NFKC forms, NUL
and control bytes, ``?``/``#`` smuggling, absolute URLs and ``//host``, dot segments at the end,
case and encoded letters, invalid UTF-8, and deeper prefixes.
"""

from __future__ import annotations

from collections.abc import Iterator

from tests.security.normalizers import all_normalisations

__all__ = ["ALLOWED_PATHS", "FAMILIES", "PAYLOADS", "TARGETS", "reaches_target"]

ALLOWED_PATHS = ("/v1/data", "/v1/items", "/v1/items/*", "/v1/items/**")
"""The allow-list every payload is aimed at (each one starts with one of its prefixes)."""

TARGETS = ("/admin/keys", "/internal/config")
"""What the sample API serves but no caller of the bridge may ever reach."""

_ITEMS = "/v1/items/"
# (prefix, how many ``..`` reach the root from it)
_PREFIXES = (("/v1/items/", 2), ("/v1/items/7/", 3))


def _tail(target: str) -> str:
    return target.lstrip("/")


def _climb(up: str, count: int, target: str, prefix: str = _ITEMS) -> str:
    """``prefix`` + ``up`` ``count`` times + the target: ``up`` carries its own separator."""
    return prefix + up * count + _tail(target)


def _each_target(*templates: str) -> Iterator[str]:
    """Each template (``{t}``: the target without its leading slash) for each target."""
    for target in TARGETS:
        for template in templates:
            yield template.format(t=_tail(target))


def _plain() -> Iterator[str]:
    """The baseline every policy must refuse: literal dot segments."""
    yield from _each_target(
        "/v1/items/../../{t}",
        "/v1/items/7/../../../{t}",
        "/v1/items/../../../{t}",  # above the root: most servers stay at the root
        "/v1/data/../../{t}",
        "/v1/items/./../../{t}",
    )


def _matrix_parameters() -> Iterator[str]:
    """Servlet path parameters: ``..;x`` is ``..`` once Tomcat strips ``;...`` per segment."""
    ups = ("..;/", "..;x=1/", "..;jsessionid=0A1B2C3D4E/", "..;a=b;c=d/", "..;%2f/")
    for target in TARGETS:
        for prefix, depth in _PREFIXES:
            for up in ups:
                yield _climb(up, depth, target, prefix)
    yield from _each_target(
        "/v1/items;x/..;/..;/{t}",
        "/v1/items/7;x=1/..;/..;/..;/{t}",
        "/v1/data;jsessionid=1/..;/..;/{t}",
        "/v1/items/..;/../{t}",
        "/v1/items/..;/..;/{t};.json",  # a suffix check sees ".json"
    )


def _lone_semicolons() -> Iterator[str]:
    """A segment that is only ``;`` (or only a parameter) is empty to a servlet container."""
    yield from _each_target(
        "/v1/items/;/../../../{t}",
        "/v1/items/;jsessionid=1/../../../{t}",
        "/v1/items;/../../{t}",
        "/v1/items/7;/../../../{t}",
        "/v1/items/..;/;/..;/{t}",
        "/v1/items/;/..;/..;/{t}",
    )


def _encoded_dots() -> Iterator[str]:
    """``%2e`` in every case and mix: decoded before (servlet, nginx, Go, IIS) or treated as a
    dot while still encoded (WHATWG)."""
    dots = ("%2e%2e", "%2E%2E", ".%2e", "%2e.", ".%2E", "%2E.", "%2e%2E", "%2E%2e")
    for target in TARGETS:
        for prefix, depth in _PREFIXES:
            for dot in dots:
                yield _climb(dot + "/", depth, target, prefix)
    yield from _each_target(
        "/v1/items/%2e/../../{t}",
        "/v1/items/%2e/%2e%2e/%2e%2e/{t}",
        "/v1/items/%2e%2e;/%2e%2e;/{t}",
        "/v1/items/.%2e;x=1/%2e.;x=1/{t}",
    )


def _encoded_semicolons() -> Iterator[str]:
    """``%3b``: a literal ``;`` to the container, but a proxy that decodes it hands Tomcat a
    path parameter (and a bridge that decodes before checking sees ``..;``)."""
    for target in TARGETS:
        for up in ("..%3b/", "..%3B/", "..%3bx=1/", "%2e%2e%3b/"):
            yield _climb(up, 2, target)


def _double_encoding() -> Iterator[str]:
    """``%25``-escaped escapes: harmless to one decode, a traversal to a second one (a bridge
    that decodes before re-encoding, or a proxy chain)."""
    for target in TARGETS:
        for up in (
            "%252e%252e/",
            "%252E%252E/",
            "..%252f",
            "%252e%252e%252f",
            "%25%32%65%25%32%65/",
        ):
            yield _climb(up, 2, target)


def _overlong_utf8() -> Iterator[str]:
    """Overlong UTF-8 for ``.``, ``/`` and ``\\``: rejected by strict decoders, read as ASCII by
    lenient ones (old IIS)."""
    ups = (
        "%c0%ae%c0%ae/",
        "%C0%AE%C0%AE/",
        "..%c0%af",
        "%c0%ae%c0%ae%c0%af",
        "%e0%80%ae%e0%80%ae/",
        "..%c1%9c",
    )
    for target in TARGETS:
        for up in ups:
            yield _climb(up, 2, target)


def _iis_unicode_escapes() -> Iterator[str]:
    """IIS ``%uXXXX`` escapes for dots, slashes and their full-width forms."""
    ups = (
        "%u002e%u002e/",
        "%U002E%U002E/",
        ".%u002e/",
        "%u002e./",
        "..%u2215",
        "..%u2216",
        "%u002e%u002e%u002f",
        "..%u005c",
        "%uff0e%uff0e/",
    )
    for target in TARGETS:
        for up in ups:
            yield _climb(up, 2, target)


def _backslashes() -> Iterator[str]:
    """``\\`` and ``%5c``: a separator to Windows, IIS and WHATWG (http URLs)."""
    for target in TARGETS:
        tail = _tail(target)
        backslashed = tail.replace("/", "\\")
        yield f"/v1/items/..\\..\\{backslashed}"
        yield f"/v1/items/..\\..\\{tail}"
        yield f"/v1/items\\..\\..\\{tail}"
        yield f"/v1/items/7\\..\\..\\..\\{tail}"
        yield f"/v1/items/..%5c..%5c{tail}"
        yield f"/v1/items/..%5C..%5C{tail.replace('/', '%5C')}"
        yield f"/v1/items/%2e%2e%5c%2e%2e%5c{tail}"
        yield f"/v1/items/.%2e\\.%2e\\{tail}"
        yield f"/v1/items/..\\/..\\/{tail}"


def _encoded_slashes() -> Iterator[str]:
    """``%2f``: a separator to nginx, Go's ``URL.Path`` and IIS; a 400 to Tomcat by default."""
    for target in TARGETS:
        for up in ("..%2f", "..%2F", "%2e%2e%2f", "%2E%2E%2F", ".%2e%2f", "%2e.%2F"):
            yield _climb(up, 2, target)
    yield from _each_target("/v1/items%2f..%2f..%2f{t}", "/v1/items/.%2f..%2f..%2f{t}")
    for target in TARGETS:
        yield "/v1/items/..%2f..%2f" + _tail(target).replace("/", "%2f")


def _slash_runs() -> Iterator[str]:
    """``//`` and ``///``: merged before ``..`` is resolved (Tomcat, nginx, Go) a ``..`` after
    an empty segment climbs one more real segment than RFC 3986 says."""
    yield from _each_target(
        "/v1/items/..//../{t}",
        "/v1/items//..//..//{t}",
        "/v1/items/..///..///{t}",
        "/v1/items/../..//{t}",
        "/v1/items/../..///{t}",
        "/v1/items//../../{t}",
        "/v1/items/.//..//..//{t}",
        "/v1/items/%2f%2e%2e%2f%2e%2e%2f{t}",
    )
    for target in TARGETS:
        yield "/v1/items/..//..//" + _tail(target).replace("/", "//")


def _trailing_dots_and_spaces() -> Iterator[str]:
    """Windows drops trailing dots and spaces from names (``.. `` and ``...`` climb, ``keys.``
    is ``keys``); ``....//`` survives a filter that deletes ``../`` once."""
    yield from _each_target(
        "/v1/items/.. /.. /{t}",
        "/v1/items/..%20/..%20/{t}",
        "/v1/items/..%20%20/..%20%20/{t}",
        "/v1/items/.../.../{t}",
        "/v1/items/..../..../{t}",
        "/v1/items/....//....//{t}",
        "/v1/items/..%2e/..%2e/{t}",
        "/v1/items/.. ./.. ./{t}",
        "/v1/items/..%20./..%20./{t}",
    )
    for target in TARGETS:
        first, second = _tail(target).split("/")
        yield f"/v1/items/../../{first}./{second}."
        yield f"/v1/items/../../{first}%20/{second}%20"
        yield f"/v1/items/%2e%2e/%2e%2e/{first}.../{second}.%20."


def _unicode_lookalikes() -> Iterator[str]:
    """Full-width and other dot/slash look-alikes and NFKC forms: folded to ASCII by NFKC or
    Windows best-fit conversion (IIS), or by a bridge that normalises Unicode after checking."""
    dots = (
        "\uff0e\uff0e",  # FULLWIDTH FULL STOP
        "\u2025",  # TWO DOT LEADER (NFKC: "..")
        "\u2024\u2024",  # ONE DOT LEADER
        "\ufe52\ufe52",  # SMALL FULL STOP
        ".\uff0e",
        "%ef%bc%8e%ef%bc%8e",  # U+FF0E, UTF-8 encoded
        "%e2%80%a5",  # U+2025, UTF-8 encoded
    )
    slashes = (
        "\uff0f",  # FULLWIDTH SOLIDUS
        "\u2215",  # DIVISION SLASH
        "\u2216",  # SET MINUS (best-fit: "\")
        "\uff3c",  # FULLWIDTH REVERSE SOLIDUS
        "%ef%bc%8f",  # U+FF0F, UTF-8 encoded
        "\ufe68",  # SMALL REVERSE SOLIDUS
    )
    for target in TARGETS:
        tail = _tail(target)
        for dot in dots:
            yield _climb(dot + "/", 2, target)
        for slash in slashes:
            yield f"/v1/items/..{slash}..{slash}{tail}"
        yield f"/v1/items/\uff0e\uff0e\uff0f\uff0e\uff0e\uff0f{tail.replace('/', chr(0xFF0F))}"
        fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in tail)
        yield f"/v1/items/../../{fullwidth}"
        yield f"/v1/items/../../{_compatibility_letters(tail)}"


def _compatibility_letters(text: str) -> str:
    """``text`` with letters swapped for compatibility characters that NFKC (and lower-casing)
    fold back: KELVIN SIGN for "k", LONG S for "s", the "fi" ligature, ROMAN NUMERAL ONE."""
    for plain, lookalike in (("k", "\u212a"), ("s", "\u017f"), ("fi", "\ufb01"), ("i", "\u2170")):
        if plain in text:
            return text.replace(plain, lookalike)
    return text


def _nul_and_controls() -> Iterator[str]:
    """NUL and control bytes: C-level truncation, WHATWG's silent tab/newline removal, and CRLF
    request splitting if a path ever reaches the request line unencoded."""
    yield from _each_target(
        "/v1/items/%00/../../../{t}",
        "/v1/items/..%00/..%00/{t}",
        "/v1/items/../../{t}%00.json",
        "/v1/items/%09/../../../{t}",
        "/v1/items/%0a/../../../{t}",
        "/v1/items/%0d%0a/../../../{t}",
        "/v1/items/..%09/..%09/{t}",
        "/v1/items/..%0a/..%0a/{t}",
        "/v1/items/.\t./.\t./{t}",
        "/v1/items/..\t/..\t/{t}",
        "/v1/items/.\n./.\r\n./{t}",
        "/v1/items/7 HTTP/1.1\r\nX-Smuggled: 1\r\n\r\nGET /{t}",
    )


def _query_and_fragment_smuggling() -> Iterator[str]:
    """``?`` and ``#`` (raw or encoded): what ends the path for one parser is data to another
    (Go keeps a ``#`` in the path), and a trailing allowed path fools suffix checks."""
    yield from _each_target(
        "/v1/items/..;/..;/{t}?/v1/items",
        "/v1/items/..;/..;/{t}#/v1/items",
        "/v1/items/%3f/../../../{t}",
        "/v1/items/%23/../../../{t}",
        "/v1/items/7#/../../../{t}",
        "/v1/items/7?/../../{t}",
        "/v1/items/..%3f/..%3f/{t}",
        "/v1/items/%2e%2e/%2e%2e/{t}?page=1",
    )


def _absolute_urls() -> Iterator[str]:
    """Absolute URLs and ``//host`` inside the path: a bridge that resolves dot segments and then
    joins the result to its base URL would send the request to another host."""
    yield from _each_target(
        "/v1/items/../..//evil.example/{t}",
        "/v1/items/..%2f..%2f%2fevil.example%2f{t}",
        "/v1/items/../../http://127.0.0.1/{t}",
        "/v1/items/..;/..;/https:%2f%2f127.0.0.1%2f{t}",
    )


def _dot_segments_at_the_end() -> Iterator[str]:
    """``/./`` anywhere and ``.`` / ``..`` as the last segment (trailing-slash handling)."""
    yield from _each_target(
        "/v1/items/../.././{t}",
        "/v1/items/../../{t}/.",
        "/v1/items/../../{t}/",
        "/v1/items/../../{t}/x/..",
        "/v1/items/../../{t}/%2e",
        "/v1/items/x/../../../{t}",
    )
    for target in TARGETS:
        first, second = _tail(target).split("/")
        yield f"/v1/items/../../{first}/x/../{second}"


def _case_and_encoded_letters() -> Iterator[str]:
    """Case (IIS and Express route case-insensitively) and needlessly encoded letters."""
    for target in TARGETS:
        tail = _tail(target)
        encoded = "".join(c if c == "/" else f"%{ord(c):02x}" for c in tail)
        yield f"/v1/items/../../{tail.upper()}"
        yield f"/v1/items/../../{tail.title()}"
        yield f"/v1/items/%2e%2e/%2e%2e/{tail.upper()}"
        yield f"/v1/items/../../%{ord(tail[0]):02x}{tail[1:]}"
        yield f"/v1/items/../../{encoded}"
        yield f"/v1/items/..;/..;/%{ord(tail[0]):02X}{tail[1:]}"
        yield f"/v1/items/../../{tail.replace('/', '%2F')}"


def _invalid_utf8() -> Iterator[str]:
    """Bytes that are not UTF-8: a 400 to strict decoders, a plain segment to byte-level ones."""
    yield from _each_target(
        "/v1/items/..%ff/..%ff/{t}",
        "/v1/items/%ff/../../../{t}",
        "/v1/items/%c0/../../../{t}",
        "/v1/items/%ed%a0%80/../../../{t}",
    )


def _deeper_prefixes() -> Iterator[str]:
    """Longer allowed prefixes (``/v1/items/**``) and far more ``..`` than needed."""
    yield from _each_target(
        "/v1/items/a/b/../../../../{t}",
        "/v1/items/7/8/9/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{t}",
        "/v1/items/" + "../" * 8 + "{t}",
    )


FAMILIES: dict[str, tuple[str, ...]] = {
    name: tuple(dict.fromkeys(generate()))
    for name, generate in (
        ("plain", _plain),
        ("matrix_parameters", _matrix_parameters),
        ("lone_semicolons", _lone_semicolons),
        ("encoded_dots", _encoded_dots),
        ("encoded_semicolons", _encoded_semicolons),
        ("double_encoding", _double_encoding),
        ("overlong_utf8", _overlong_utf8),
        ("iis_unicode_escapes", _iis_unicode_escapes),
        ("backslashes", _backslashes),
        ("encoded_slashes", _encoded_slashes),
        ("slash_runs", _slash_runs),
        ("trailing_dots_and_spaces", _trailing_dots_and_spaces),
        ("unicode_lookalikes", _unicode_lookalikes),
        ("nul_and_controls", _nul_and_controls),
        ("query_and_fragment_smuggling", _query_and_fragment_smuggling),
        ("absolute_urls", _absolute_urls),
        ("dot_segments_at_the_end", _dot_segments_at_the_end),
        ("case_and_encoded_letters", _case_and_encoded_letters),
        ("invalid_utf8", _invalid_utf8),
        ("deeper_prefixes", _deeper_prefixes),
    )
}
"""The payloads by family, each family in generation order."""

PAYLOADS: tuple[str, ...] = tuple(
    dict.fromkeys(payload for family in FAMILIES.values() for payload in family)
)
"""Every payload once, in family order."""


def _is_target(path: str) -> bool:
    """A routed path that serves a target: the target itself, or with a trailing slash (Spring 5,
    Express and ASP.NET routing ignore it)."""
    return path in TARGETS or (path.endswith("/") and path[:-1] in TARGETS)


def reaches_target(raw_path: str) -> set[str]:
    """The modelled servers (``normalizers.MODELS`` names) that route ``raw_path``, sent
    verbatim, to one of ``TARGETS``."""
    return {
        server
        for server, path in all_normalisations(raw_path).items()
        if path is not None and _is_target(path)
    }
