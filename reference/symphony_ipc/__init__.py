"""symphony_ipc: the reference implementation of the Symphony IPC protocol."""

from __future__ import annotations

from ._codec import (
    CODECS,
    MAX_MESSAGE_SIZE,
    Codec,
    decode,
    decode_json,
    decode_msgpack,
    encode,
    encode_json,
    encode_msgpack,
    message_from_data,
    message_to_data,
)
from ._errors import (
    ERROR_CLASSES,
    ERROR_TABLE,
    ErrorCode,
    InvalidEndpointId,
    InvalidMessageType,
    InvalidMetadataKey,
    InvalidPriority,
    InvalidProtocolVersion,
    MessageTooLarge,
    MissingField,
    ProtocolError,
    SerializationError,
    TtlExpired,
    UuidParseError,
)
from ._ids import new_id, parse_uuid
from ._model import (
    CURRENT_VERSION,
    Header,
    Message,
    MessageBuilder,
    MessageType,
    Priority,
    ProtocolVersion,
    Ttl,
    new_message,
)
from ._ordering import PriorityQueue, order
from ._receive import receive
from ._time import SYSTEM_CLOCK, Clock, ManualClock, SystemClock, Timestamp, format_rfc3339, parse_rfc3339
from .transport import (
    ConnectionRefused,
    FrameTooLarge,
    HandshakeFailed,
    PeerBroken,
    PeerClosed,
    TransportClosed,
    TransportError,
    TransportTimeout,
)

__version__ = "0.1.0"
SPEC_VERSION = "1.0.0"

__all__ = [
    "CODECS",
    "CURRENT_VERSION",
    "ERROR_CLASSES",
    "ERROR_TABLE",
    "MAX_MESSAGE_SIZE",
    "SPEC_VERSION",
    "SYSTEM_CLOCK",
    "Clock",
    "Codec",
    "ErrorCode",
    "Header",
    "InvalidEndpointId",
    "InvalidMessageType",
    "InvalidMetadataKey",
    "InvalidPriority",
    "InvalidProtocolVersion",
    "ManualClock",
    "Message",
    "MessageBuilder",
    "MessageTooLarge",
    "MessageType",
    "MissingField",
    "Priority",
    "PriorityQueue",
    "ProtocolError",
    "ProtocolVersion",
    "SerializationError",
    "SystemClock",
    "Timestamp",
    "Ttl",
    "TtlExpired",
    "UuidParseError",
    "__version__",
    "decode",
    "decode_json",
    "decode_msgpack",
    "encode",
    "encode_json",
    "encode_msgpack",
    "format_rfc3339",
    "message_from_data",
    "message_to_data",
    "new_id",
    "new_message",
    "order",
    "parse_rfc3339",
    "parse_uuid",
    "receive",
]
__all__ += [  # transports (spec/transport.md); the rest is in symphony_ipc.transport
    "ConnectionRefused",
    "FrameTooLarge",
    "HandshakeFailed",
    "PeerBroken",
    "PeerClosed",
    "TransportClosed",
    "TransportError",
    "TransportTimeout",
]
