"""``POST /graphql``: a GraphQL-like endpoint over the sample items, a POST-only read.

Why: GraphQL is POST-only and answers its own errors with 200, so the bridge must carry a body and
pass a 200 ``{"errors": [...]}`` through as the API's answer. A real GraphQL library is not
needed for that: this is a small, bounded subset.

The language (commas and ``#`` comments are ignored, as in GraphQL)::

    document   = [ "query" [Name] [ "(" ( "$" Name ":" Type ["!"] )+ ")" ] ] "{" root+ "}"
    root       = ( "items" [ "(" "first" ":" value ")" ]
                 | "item" "(" "id" ":" value ")" ) "{" field+ "}"
    value      = Int | "$" Name
    field      = "id" | "name" | "value" | "category"

The parser never recurses (selection sets nest exactly two deep), the query is at most
``MAX_QUERY_CHARS`` long, and every token is matched by one anchored regular expression.

Request body: ``{"query": str, "variables": object?, "operationName": str?, "extensions": any}``.
Answers: 200 ``{"data": {...}}``; 200 ``{"errors": [{"message": ...}]}`` for a query this subset
does not know or cannot run (an unknown field, argument, variable or operation, a syntax error);
400 for a body that is not such an object or a query too long; 415 for a non-JSON Content-Type.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from okta_bridge_dev.emulators.routing import RecordedRequest, Response
from okta_bridge_dev.emulators.sample_resources import (
    ITEMS,
    MAX_PAGE_SIZE,
    RequestRefused,
    invalid_request,
    item_category,
    json_body,
)

__all__ = ["ITEM_FIELDS", "MAX_QUERY_CHARS", "GraphQL", "QueryError", "execute"]

MAX_QUERY_CHARS = 4096
ITEM_FIELDS = ("id", "name", "value", "category")

_TOKEN = re.compile(
    r"(?P<skip>[\s,]+|#[^\n]*)|(?P<punct>[{}():!$])|(?P<int>-?(?:0|[1-9][0-9]{0,8})(?![0-9A-Za-z_]))"
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
)
_BODY_FIELDS = frozenset({"query", "variables", "operationName", "extensions"})
_ARGUMENTS = {"items": ("first",), "item": ("id",)}


class QueryError(Exception):
    """A query the subset cannot run; its message is the GraphQL error's ``message``."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "punct", "int", "name" or "end"
    text: str


@dataclass(frozen=True)
class _Field:
    name: str
    arguments: dict[str, int | str]  # an int literal, or the name of a variable ("$id")
    selection: tuple[str, ...]


@dataclass(frozen=True)
class _Operation:
    name: str | None
    variables: dict[str, str]  # name -> declared type ("Int!")
    fields: tuple[_Field, ...]


class GraphQL:
    """The GraphQL endpoint of one API server; ``received`` holds the body of every request it
    could read (valid JSON object with a query), answered with data or errors, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: list[dict[str, Any]] = []

    def clear(self) -> None:
        """Forget the received requests."""
        with self._lock:
            self.received.clear()

    def handle(self, request: RecordedRequest) -> Response:
        """Answer one ``POST /graphql``."""
        try:
            body = _request_body(json_body(request))
        except RequestRefused as refused:
            return refused.response
        with self._lock:
            self.received.append(body)
        try:
            data = execute(body["query"], body.get("variables") or {}, body.get("operationName"))
        except QueryError as error:
            return Response.json(200, {"errors": [{"message": str(error)}]})
        return Response.json(200, {"data": data})


def _request_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid_request("The body must be a JSON object.")
    if set(body) - _BODY_FIELDS:
        raise invalid_request("The body holds only query, variables, operationName, extensions.")
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise invalid_request("query must be a non-empty string.")
    if len(query) > MAX_QUERY_CHARS:
        raise invalid_request(f"query must be at most {MAX_QUERY_CHARS} characters.")
    if not isinstance(body.get("variables") or {}, dict):
        raise invalid_request("variables must be an object.")
    if not isinstance(body.get("operationName") or "", str):
        raise invalid_request("operationName must be a string.")
    return body


def execute(
    query: str, variables: Mapping[str, Any], operation_name: str | None = None
) -> dict[str, Any]:
    """The ``data`` of ``query`` over ``ITEMS``; raises QueryError with GraphQL's message."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"The query is longer than {MAX_QUERY_CHARS} characters.")
    operation = _Parser(query).operation()
    if operation_name is not None and operation_name != operation.name:
        raise QueryError(f'Unknown operation named "{_quoted(operation_name)}".')
    data: dict[str, Any] = {}
    for field in operation.fields:
        arguments = {
            name: _argument(value, operation.variables, variables)
            for name, value in field.arguments.items()
        }
        data[field.name] = _resolve(field, arguments)
    return data


def _resolve(field: _Field, arguments: Mapping[str, int]) -> Any:
    if field.name == "items":
        first = arguments.get("first", len(ITEMS))
        if not 0 <= first <= MAX_PAGE_SIZE:
            raise QueryError(f"first must be from 0 to {MAX_PAGE_SIZE}.")
        return [_select(item, field.selection) for item in ITEMS[:first]]
    number = arguments["id"]
    return _select(ITEMS[number - 1], field.selection) if 1 <= number <= len(ITEMS) else None


def _select(item: Mapping[str, Any], selection: tuple[str, ...]) -> dict[str, Any]:
    return {name: item_category(item) if name == "category" else item[name] for name in selection}


def _argument(value: int | str, declared: Mapping[str, str], variables: Mapping[str, Any]) -> int:
    """An argument's value: the literal, or the variable's (declared as ``Int`` or ``Int!``)."""
    if isinstance(value, int):
        return value
    if value not in declared:
        raise QueryError(f'Variable "${value}" is not defined.')
    kind = declared[value]
    if kind not in ("Int", "Int!"):
        raise QueryError(f'Variable "${value}" of type "{kind}" used where "Int" is expected.')
    given = variables.get(value)
    if given is None:
        raise QueryError(f'Variable "${value}" of type "{kind}" was not provided.')
    if isinstance(given, bool) or not isinstance(given, int) or abs(given) >= 2**31:
        raise QueryError(f'Variable "${value}" got invalid value; Int cannot represent it.')
    return given


def _quoted(text: str) -> str:
    """A caller's name, shortened, for an error message."""
    return text[:64]


class _Parser:
    """The subset's parser: a token list and a cursor, no recursion."""

    def __init__(self, query: str) -> None:
        self._tokens = _tokenize(query)
        self._at = 0

    def operation(self) -> _Operation:
        name: str | None = None
        variables: dict[str, str] = {}
        if self._peek().kind == "name":
            keyword = self._take("name").text
            if keyword != "query":
                raise QueryError(f'Only queries are supported, not "{_quoted(keyword)}".')
            if self._peek().kind == "name":
                name = self._take("name").text
            if self._peek().text == "(":
                variables = self._variable_definitions()
        fields = self._root_fields()
        self._take("end")
        return _Operation(name, variables, fields)

    def _variable_definitions(self) -> dict[str, str]:
        self._take("punct", "(")
        variables: dict[str, str] = {}
        while self._peek().text != ")":
            self._take("punct", "$")
            name = self._take("name").text
            self._take("punct", ":")
            kind = self._take("name").text
            if self._peek().text == "!":
                kind += self._take("punct", "!").text
            if name in variables:
                raise QueryError(f'There can be only one variable named "${name}".')
            variables[name] = kind
        self._take("punct", ")")
        if not variables:
            raise QueryError("Syntax Error: Expected a variable definition.")
        return variables

    def _root_fields(self) -> tuple[_Field, ...]:
        self._take("punct", "{")
        fields: list[_Field] = []
        while self._peek().text != "}":
            name = self._take("name").text
            if name not in _ARGUMENTS:
                raise QueryError(f'Cannot query field "{name}" on type "Query".')
            arguments = self._arguments(name) if self._peek().text == "(" else {}
            if name == "item" and "id" not in arguments:
                raise QueryError('Field "item" argument "id" of type "Int!" is required.')
            fields.append(_Field(name, arguments, self._item_selection()))
        self._take("punct", "}")
        if not fields:
            raise QueryError('Syntax Error: Expected Name, found "}".')
        if len({field.name for field in fields}) != len(fields):
            raise QueryError("Each root field may be selected once (aliases are not supported).")
        return tuple(fields)

    def _arguments(self, field: str) -> dict[str, int | str]:
        self._take("punct", "(")
        arguments: dict[str, int | str] = {}
        while self._peek().text != ")":
            name = self._take("name").text
            if name not in _ARGUMENTS[field] or name in arguments:
                raise QueryError(f'Unknown or repeated argument "{name}" on field "Query.{field}".')
            self._take("punct", ":")
            if self._peek().text == "$":
                self._take("punct", "$")
                arguments[name] = self._take("name").text
            else:
                arguments[name] = int(self._take("int").text)
        self._take("punct", ")")
        return arguments

    def _item_selection(self) -> tuple[str, ...]:
        self._take("punct", "{")
        selection: list[str] = []
        while self._peek().text != "}":
            name = self._take("name").text
            if name not in ITEM_FIELDS:
                raise QueryError(f'Cannot query field "{name}" on type "Item".')
            if self._peek().text in ("(", "{"):
                raise QueryError(f'Field "{name}" of type "Item" takes no arguments or selection.')
            if name not in selection:
                selection.append(name)
        self._take("punct", "}")
        if not selection:
            raise QueryError('Syntax Error: Expected Name, found "}".')
        return tuple(selection)

    def _peek(self) -> _Token:
        return self._tokens[self._at]

    def _take(self, kind: str, text: str | None = None) -> _Token:
        token = self._tokens[self._at]
        if token.kind != kind or (text is not None and token.text != text):
            found = "<EOF>" if token.kind == "end" else token.text
            raise QueryError(f'Syntax Error: Expected {text or kind}, found "{found}".')
        self._at += token.kind != "end"
        return token


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            raise QueryError(f"Syntax Error: Unexpected character at position {position}.")
        kind = match.lastgroup or "skip"
        if kind != "skip":
            tokens.append(_Token(kind, match.group()))
        position = match.end()
    tokens.append(_Token("end", ""))
    return tokens
