"""Typed protocol errors: one class per spec error code (spec/protocol.md section 2)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    INVALID_MESSAGE_TYPE = "INVALID_MESSAGE_TYPE"
    MISSING_FIELD = "MISSING_FIELD"
    INVALID_ENDPOINT_ID = "INVALID_ENDPOINT_ID"
    INVALID_PRIORITY = "INVALID_PRIORITY"
    TTL_EXPIRED = "TTL_EXPIRED"
    INVALID_PROTOCOL_VERSION = "INVALID_PROTOCOL_VERSION"
    INVALID_METADATA_KEY = "INVALID_METADATA_KEY"
    SERIALIZATION = "SERIALIZATION"
    UUID_PARSE = "UUID_PARSE"
    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"
    # the message bus (spec/bus.md section 12)
    BACKPRESSURE = "BACKPRESSURE"
    NO_ROUTE = "NO_ROUTE"
    UNMATCHED_RESPONSE = "UNMATCHED_RESPONSE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    HANDLER_FAILED = "HANDLER_FAILED"
    ENDPOINT_CLOSED = "ENDPOINT_CLOSED"
    INVALID_OPERATION = "INVALID_OPERATION"
    # security and robustness (spec/security.md section 4)
    PEER_NOT_ALLOWED = "PEER_NOT_ALLOWED"
    CONNECTION_LIMIT = "CONNECTION_LIMIT"
    HANDSHAKE_TIMEOUT = "HANDSHAKE_TIMEOUT"
    RATE_LIMITED = "RATE_LIMITED"


#: code -> (category, recoverable), the table of spec/protocol.md section 2.
ERROR_TABLE: dict[ErrorCode, tuple[str, bool]] = {
    ErrorCode.INVALID_MESSAGE_TYPE: ("validation", True),
    ErrorCode.MISSING_FIELD: ("validation", True),
    ErrorCode.INVALID_ENDPOINT_ID: ("validation", True),
    ErrorCode.INVALID_PRIORITY: ("validation", True),
    ErrorCode.TTL_EXPIRED: ("expiry", True),
    ErrorCode.INVALID_PROTOCOL_VERSION: ("version", False),
    ErrorCode.INVALID_METADATA_KEY: ("validation", True),
    ErrorCode.SERIALIZATION: ("serialization", True),
    ErrorCode.UUID_PARSE: ("serialization", True),
    ErrorCode.MESSAGE_TOO_LARGE: ("resource", True),
    ErrorCode.BACKPRESSURE: ("resource", True),
    ErrorCode.NO_ROUTE: ("routing", True),
    ErrorCode.UNMATCHED_RESPONSE: ("routing", True),
    ErrorCode.REQUEST_TIMEOUT: ("timeout", True),
    ErrorCode.HANDLER_FAILED: ("delivery", True),
    ErrorCode.ENDPOINT_CLOSED: ("delivery", True),
    ErrorCode.INVALID_OPERATION: ("validation", True),
    ErrorCode.PEER_NOT_ALLOWED: ("security", False),
    ErrorCode.CONNECTION_LIMIT: ("resource", False),
    ErrorCode.HANDSHAKE_TIMEOUT: ("timeout", False),
    ErrorCode.RATE_LIMITED: ("resource", True),
}


class ProtocolError(Exception):
    """Base of every error the reference raises for bad input; carries the spec's code."""

    code: ClassVar[ErrorCode]

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def category(self) -> str:
        return ERROR_TABLE[self.code][0]

    @property
    def recoverable(self) -> bool:
        return ERROR_TABLE[self.code][1]

    def to_dict(self) -> dict[str, Any]:
        """The wire form of an error (spec/message.schema.json#/$defs/error)."""
        out: dict[str, Any] = {
            "code": self.code.value,
            "category": self.category,
            "recoverable": self.recoverable,
            "message": self.message,
        }
        if self.details:
            out["details"] = self.details
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidMessageType(ProtocolError):
    code = ErrorCode.INVALID_MESSAGE_TYPE


class MissingField(ProtocolError):
    code = ErrorCode.MISSING_FIELD

    def __init__(self, field: str, message: str | None = None) -> None:
        super().__init__(message or f"missing required field {field!r}", field=field)
        self.field = field


class InvalidEndpointId(ProtocolError):
    code = ErrorCode.INVALID_ENDPOINT_ID


class InvalidPriority(ProtocolError):
    code = ErrorCode.INVALID_PRIORITY


class TtlExpired(ProtocolError):
    code = ErrorCode.TTL_EXPIRED


class InvalidProtocolVersion(ProtocolError):
    code = ErrorCode.INVALID_PROTOCOL_VERSION

    def __init__(self, major: int, minor: int, message: str | None = None) -> None:
        super().__init__(
            message or f"incompatible protocol version {major}.{minor}", major=major, minor=minor
        )
        self.major = major
        self.minor = minor


class InvalidMetadataKey(ProtocolError):
    code = ErrorCode.INVALID_METADATA_KEY


class SerializationError(ProtocolError):
    code = ErrorCode.SERIALIZATION


class UuidParseError(ProtocolError):
    code = ErrorCode.UUID_PARSE


class MessageTooLarge(ProtocolError):
    code = ErrorCode.MESSAGE_TOO_LARGE


class Backpressure(ProtocolError):
    code = ErrorCode.BACKPRESSURE


class NoRoute(ProtocolError):
    code = ErrorCode.NO_ROUTE


class UnmatchedResponse(ProtocolError):
    code = ErrorCode.UNMATCHED_RESPONSE


class RequestTimeout(ProtocolError):
    code = ErrorCode.REQUEST_TIMEOUT


class HandlerFailed(ProtocolError):
    code = ErrorCode.HANDLER_FAILED


class EndpointClosed(ProtocolError):
    code = ErrorCode.ENDPOINT_CLOSED


class InvalidOperation(ProtocolError):
    code = ErrorCode.INVALID_OPERATION


class PeerNotAllowed(ProtocolError):
    code = ErrorCode.PEER_NOT_ALLOWED


class ConnectionLimit(ProtocolError):
    code = ErrorCode.CONNECTION_LIMIT


class HandshakeTimeout(ProtocolError):
    code = ErrorCode.HANDSHAKE_TIMEOUT


class RateLimited(ProtocolError):
    code = ErrorCode.RATE_LIMITED


ERROR_CLASSES: dict[ErrorCode, type[ProtocolError]] = {
    cls.code: cls
    for cls in (
        InvalidMessageType,
        MissingField,
        InvalidEndpointId,
        InvalidPriority,
        TtlExpired,
        InvalidProtocolVersion,
        InvalidMetadataKey,
        SerializationError,
        UuidParseError,
        MessageTooLarge,
        Backpressure,
        NoRoute,
        UnmatchedResponse,
        RequestTimeout,
        HandlerFailed,
        EndpointClosed,
        InvalidOperation,
        PeerNotAllowed,
        ConnectionLimit,
        HandshakeTimeout,
        RateLimited,
    )
}
