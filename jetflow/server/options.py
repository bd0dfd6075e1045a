"""``/subscribe`` parameters and ``options_update`` messages, parsed as Jetstream v1 does.

Spec §3 (query string, HTTP 400 bodies), §4 (filters), §6 (``options_update``), with the §0
fixes: ``maxMessageSizeBytes`` ≥ 2^32 means "no limit" instead of wrapping, and it is applied
from ``options_update`` too. Errors carry Jetstream's exact text, used as the 400 body or as
the reason of the close frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import orjson

from jetflow.filtering import EventFilter, is_valid_did, is_valid_nsid
from jetflow.store.sqlite import ReplayQuery

MAX_WANTED_COLLECTIONS = 100
MAX_WANTED_DIDS = 10_000
MAX_CLIENT_MESSAGE_BYTES = 10_000_000
INVALID_OPTIONS = "invalid subscriber options"
_UINT32 = 1 << 32
_INT64_MAX = (1 << 63) - 1


class OptionsError(ValueError):
    """A request or message Jetstream would refuse; ``str()`` is Jetstream's error text."""


@dataclass(frozen=True)
class SubscriberOptions:
    """The replaceable part of a subscription: filters and the size cap."""

    collections: frozenset[str] | None = None
    prefixes: tuple[str, ...] = ()
    dids: frozenset[str] | None = None
    max_payload: int | None = None

    def event_filter(self) -> EventFilter:
        """The same filter as an EventFilter, with Jetstream's identity/account bypass."""
        collections = None
        if self.collections is not None:
            collections = [*self.collections, *(prefix + "*" for prefix in self.prefixes)]
        return EventFilter(collections, self.dids, non_commits_bypass=True)

    def replay_query(self, compressed: bool) -> ReplayQuery:
        return ReplayQuery(self.collections, self.prefixes, self.dids, self.max_payload, compressed)

    def describe(self) -> dict[str, Any]:
        return {
            "collections": None
            if self.collections is None
            else len(self.collections) + len(self.prefixes),
            "dids": None if self.dids is None else len(self.dids),
            "max_message_size": self.max_payload,
        }


@dataclass(frozen=True)
class SubscribeRequest:
    """Everything a ``GET /subscribe`` asked for."""

    options: SubscriberOptions
    cursor: int | None
    compress: bool
    require_hello: bool


def parse_options(
    collections: Iterable[str], dids: Iterable[str], max_payload: int | None
) -> SubscriberOptions:
    """Validate filters in Jetstream's order and with its messages."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for value in collections:
        if value.endswith(".*"):
            prefixes.append(value[:-1])
        elif is_valid_nsid(value):
            exact.add(value)
        else:
            raise OptionsError(f"{INVALID_OPTIONS}: invalid collection: {value}")
    wanted_dids: set[str] = set()
    for did in dids:
        if not is_valid_did(did):
            raise OptionsError(INVALID_OPTIONS)
        wanted_dids.add(did)
    if len(wanted_dids) > MAX_WANTED_DIDS:
        raise OptionsError(f"{INVALID_OPTIONS}: too many wanted DIDs")
    if len(exact) + len(prefixes) > MAX_WANTED_COLLECTIONS:
        raise OptionsError(f"{INVALID_OPTIONS}: too many wanted collections")
    has_collections = bool(exact or prefixes)
    return SubscriberOptions(
        collections=frozenset(exact) if has_collections else None,
        prefixes=tuple(prefixes),
        dids=frozenset(wanted_dids) if wanted_dids else None,
        max_payload=max_payload,
    )


def parse_query(raw_query: str) -> dict[str, list[str]]:
    """Go's ``url.ParseQuery``: ``&``-separated, ``+`` is a space, pairs with ``;`` or a bad
    escape are dropped."""
    values: dict[str, list[str]] = {}
    for pair in raw_query.split("&"):
        if not pair or ";" in pair:
            continue
        key, _, value = pair.partition("=")
        try:
            key, value = _unescape(key), _unescape(value)
        except ValueError:
            continue
        values.setdefault(key, []).append(value)
    return values


def _unescape(text: str) -> str:
    index = text.find("%")
    while index != -1:
        if not _is_hex(text[index + 1 : index + 3]):
            raise ValueError(f"bad escape in {text!r}")
        index = text.find("%", index + 3)
    return unquote_plus(text, errors="surrogateescape")


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


def parse_cursor(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 10, 64)``: optional sign, ASCII digits, int64 range."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        raise OptionsError(f"invalid cursor: {text}")
    value = int(text)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise OptionsError(f"invalid cursor: {text}")
    return value


def parse_max_size(text: str) -> int | None:
    """``maxMessageSizeBytes``: empty, 0, malformed or negative mean no limit; so do values of
    2^32 and above (v1 wraps them modulo 2^32, a deliberate fix)."""
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    value = int(text)
    return value if 0 < value < _UINT32 else None


def parse_subscribe(raw_query: str, headers: Mapping[str, str]) -> SubscribeRequest:
    """Parse a ``/subscribe`` request; raise OptionsError with the 400 body."""
    query = parse_query(raw_query)

    def first(name: str) -> str:
        return query.get(name, [""])[0]

    cursor_text = first("cursor")
    cursor = parse_cursor(cursor_text) if cursor_text else None
    options = parse_options(
        query.get("wantedCollections", []),
        query.get("wantedDids", []),
        parse_max_size(first("maxMessageSizeBytes")),
    )
    compress = first("compress") == "true" or "zstd" in headers.get("Socket-Encoding", "")
    return SubscribeRequest(options, cursor, compress, first("requireHello") == "true")


def parse_client_message(data: str | bytes) -> SubscriberOptions | None:
    """An ``options_update`` gives new options; any other ``type`` gives None (ignored).

    Raises OptionsError (the close reason) for malformed JSON, a payload that does not decode,
    a missing payload, or filters that fail validation.
    """
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise OptionsError(f"invalid message: {exc}") from None
    if message is None:
        return None
    if not isinstance(message, dict):
        raise OptionsError(
            f"invalid message: cannot unmarshal {_json_kind(message)} into a message"
        )
    fields = _fold(message, ("type", "payload"))
    kind = fields.get("type")
    if kind is not None and not isinstance(kind, str):
        raise OptionsError("invalid message: type must be a string")
    if kind != "options_update":
        return None
    if "payload" not in fields:
        raise OptionsError("invalid options_update payload: unexpected end of JSON input")
    return _parse_update_payload(fields["payload"])


def _parse_update_payload(payload: Any) -> SubscriberOptions:
    if payload is None:
        return SubscriberOptions()
    if not isinstance(payload, dict):
        raise OptionsError(
            f"invalid options_update payload: cannot unmarshal {_json_kind(payload)}"
        )
    fields = _fold(payload, ("wantedCollections", "wantedDids", "maxMessageSizeBytes"))
    collections = _string_list(fields.get("wantedCollections"), "wantedCollections")
    dids = _string_list(fields.get("wantedDids"), "wantedDids")
    size = fields.get("maxMessageSizeBytes")
    if size is not None and type(size) is not int:
        raise OptionsError(
            "invalid options_update payload: cannot unmarshal "
            f"{_json_kind(size)} into maxMessageSizeBytes"
        )
    if size is not None and size > _INT64_MAX:
        raise OptionsError("invalid options_update payload: maxMessageSizeBytes out of range")
    max_payload = size if size is not None and 0 < size < _UINT32 else None
    return parse_options(collections, dids, max_payload)


def _fold(obj: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Go's encoding/json field matching: exact name, else case-insensitive; later keys win."""
    by_fold = {name.casefold(): name for name in names}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = by_fold.get(key.casefold())
        if name is not None:
            out[name] = value
    return out


def _string_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OptionsError(f"invalid options_update payload: {name} must be an array of strings")
    # Go decodes a JSON null element of a []string as "".
    items = ["" if item is None else item for item in value]
    if not all(isinstance(item, str) for item in items):
        raise OptionsError(f"invalid options_update payload: {name} must be an array of strings")
    return items


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
