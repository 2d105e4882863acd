"""Codec for ``google.rpc.Status`` (gRPC rich error details) without extra dependencies.

The message is built in a private descriptor pool so it never clashes with
``googleapis-common-protos`` if that package is installed too.
"""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

STATUS_DETAILS_KEY = "grpc-status-details-bin"


def _status_class() -> type:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    fd = descriptor_pb2.FileDescriptorProto(
        name="fedfabric/google_rpc_status.proto", package="google.rpc", syntax="proto3",
        dependency=["google/protobuf/any.proto"])
    msg = fd.message_type.add(name="Status")
    msg.field.add(name="code", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    msg.field.add(name="message", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    msg.field.add(name="details", number=3, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                  type_name=".google.protobuf.Any")
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


Status = _status_class()


def encode_status(code: int, message: str, details: list[tuple[str, bytes]]) -> bytes:
    """Serialized Status; ``details`` are ``(type_url, value)`` pairs."""
    st = Status(code=code, message=message)
    for type_url, value in details:
        item = st.details.add()
        item.type_url = type_url
        item.value = value
    return st.SerializeToString()


def decode_details(blob: bytes) -> list[tuple[str, bytes]]:
    """``(type_url, value)`` of each detail in a serialized Status; empty list if malformed."""
    st = Status()
    try:
        st.ParseFromString(blob)
    except Exception:  # noqa: BLE001 - malformed trailers must not mask the real error
        return []
    return [(d.type_url, d.value) for d in st.details]
