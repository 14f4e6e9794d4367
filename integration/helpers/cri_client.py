#!/usr/bin/python3
"""cri_client.py SOCKET METHOD [REQUEST_JSON]

The CRI client of integration/cri.bats (test-only): calls one method of the CRI v1
RuntimeService (runtime.v1.RuntimeService/METHOD, as kubelet does) on the CRI server at
unix SOCKET. REQUEST_JSON is METHODRequest in the protobuf JSON mapping (field names as
in cri.proto); the answer, METHODResponse, is printed the same way (bytes as base64,
every field shown, enums by name).

Messages come from cri.proto compiled by protoc --python_out into $CRI_PB_DIR (the test
compiles it; only python3-protobuf and python3-grpcio are needed: the stubs are the
generic unary_unary calls below, no generated gRPC code).

Exit status: 0 the call succeeded; 1 the server answered with an error, printed on
stderr as one line "METHOD: CODE: MESSAGE"; 2 usage.
"""
import os
import sys

sys.path.insert(0, os.environ.get("CRI_PB_DIR", "."))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import cri_pb2  # noqa: E402

SERVICE = "/runtime.v1.RuntimeService/"
TIMEOUT_SECONDS = float(os.environ.get("CRI_TIMEOUT", "60"))


def message_class(name):
    cls = getattr(cri_pb2, name, None)
    if cls is None:
        sys.exit(f"cri_client: no message {name} in cri.proto (method not supported)")
    return cls


def call(socket, method, request_json):
    request = json_format.Parse(request_json, message_class(method + "Request")())
    response_class = message_class(method + "Response")
    with grpc.insecure_channel("unix://" + socket) as channel:
        stub = channel.unary_unary(
            SERVICE + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        return stub(request, timeout=TIMEOUT_SECONDS)


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    socket, method = argv[1], argv[2]
    try:
        response = call(socket, method, argv[3] if len(argv) == 4 else "{}")
    except grpc.RpcError as err:
        message = " ".join((err.details() or "").split())
        print(f"{method}: {err.code().name}: {message}", file=sys.stderr)
        return 1
    except json_format.ParseError as err:
        print(f"cri_client: {method}Request: {err}", file=sys.stderr)
        return 2
    print(json_format.MessageToJson(response, preserving_proto_field_name=True,
                                    including_default_value_fields=True, indent=None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
