"""Firehose websocket frames: a DAG-CBOR header (``op``, ``t``) followed by a DAG-CBOR body.

:class:`Frame` wraps the raw bytes and parses them once, on first use, so a source that needs
the ``seq`` (to resume) and the decode operator that needs the body share one parse.
"""

from __future__ import annotations

from typing import Any

import libipld

from jetflow.codec import accel
from jetflow.codec.cbor import encode
from jetflow.errors import MalformedFrameError

OP_MESSAGE = 1
OP_ERROR = -1


class Frame:
    """One raw firehose message; ``header``/``body`` are parsed on first access.

    Parsing raises :class:`MalformedFrameError` for anything that is not exactly one canonical
    DAG-CBOR header map followed by one canonical DAG-CBOR body map.
    """

    __slots__ = ("_body", "_header", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._header: dict[str, Any] | None = None
        self._body: dict[str, Any] | None = None

    def __repr__(self) -> str:
        try:
            return f"<Frame {self.type or 'error'} seq={self.seq} {len(self.data)} bytes>"
        except MalformedFrameError:
            return f"<Frame malformed {len(self.data)} bytes>"

    def _parse(self) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            parts = libipld.decode_dag_cbor_multi(self.data)
        except (ValueError, RecursionError, OverflowError) as exc:
            raise MalformedFrameError(f"frame is not DAG-CBOR: {exc}") from None
        if len(parts) != 2:
            raise MalformedFrameError(f"frame holds {len(parts)} CBOR objects, expected 2")
        header, body = parts
        if type(header) is not dict or type(body) is not dict:
            raise MalformedFrameError("frame header and body must be maps")
        op = header.get("op")
        if op == OP_MESSAGE:
            if type(header.get("t")) is not str:
                raise MalformedFrameError("message frame without a string 't'")
        elif op != OP_ERROR:
            raise MalformedFrameError(f"unknown frame op {op!r}")
        if not accel.is_canonical_frame(self.data, header, body):
            raise MalformedFrameError("frame is not canonical DAG-CBOR")
        return header, body

    def parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(header, body), parsed once; raises MalformedFrameError."""
        if self._body is None:
            self._header, self._body = self._parse()
        assert self._header is not None
        return self._header, self._body

    @property
    def header(self) -> dict[str, Any]:
        if self._header is None:
            self._header, self._body = self._parse()
        return self._header

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._header, self._body = self._parse()
        return self._body

    @property
    def type(self) -> str | None:
        """The message type (``#commit``, ``#identity``, ...), or None for an error frame."""
        t = self.header.get("t")
        return t if isinstance(t, str) else None

    @property
    def is_error(self) -> bool:
        return self.header.get("op") == OP_ERROR

    @property
    def seq(self) -> int | None:
        """The relay sequence number, if this message type carries one."""
        seq = self.body.get("seq")
        return seq if type(seq) is int else None

    @property
    def error(self) -> tuple[str, str | None]:
        """(error name, message) of an error frame."""
        name = self.body.get("error")
        message = self.body.get("message")
        return (
            name if isinstance(name, str) else "UnknownError",
            message if isinstance(message, str) else None,
        )


def encode_frame(header: dict[str, Any], body: dict[str, Any]) -> bytes:
    """Build a frame from a header and a body (values may hold :class:`~jetflow.codec.cid.Link`)."""
    return encode(header) + encode(body)


def error_frame(name: str, message: str | None = None) -> bytes:
    """An ``op: -1`` error frame, as a relay sends before closing (e.g. ``FutureCursor``)."""
    body: dict[str, Any] = {"error": name}
    if message is not None:
        body["message"] = message
    return encode_frame({"op": OP_ERROR}, body)
