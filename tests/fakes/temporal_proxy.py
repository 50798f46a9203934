"""A gRPC proxy in front of a real Temporal server that sees what a client sends, as Temporal Cloud would.

Every call is forwarded as raw bytes to the upstream (the dev server) and its answer relayed; the
proxy records each call's method and metadata (the `authorization` header an API key becomes), can
refuse calls without the expected bearer key (UNAUTHENTICATED, Temporal Cloud's answer), and can
refuse named methods with PERMISSION_DENIED — Temporal Cloud's answer to an API key calling
`OperatorService/AddSearchAttributes`. It speaks gRPC (grpcio), so what it sees is what the SDK's
Rust core put on the wire, not what our code meant to send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import grpc.aio


@dataclass
class Call:
    method: str
    metadata: dict[str, str]


def _identity(data: bytes) -> bytes:
    return data


@dataclass
class TemporalProxy:
    upstream: str
    api_key: str | None = None  # when set, a call without `authorization: Bearer <api_key>` is refused
    denied: set[str] = field(default_factory=set)  # method suffixes answered PERMISSION_DENIED
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _server: grpc.aio.Server | None = None
    _channel: grpc.aio.Channel | None = None

    async def start(self) -> str:
        self._channel = grpc.aio.insecure_channel(self.upstream)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers([_Forwarder(self)])
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
        if self._channel is not None:
            await self._channel.close()

    def handler(self, method: str) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
        assert self._channel is not None
        upstream = self._channel.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
            self.calls.append(Call(method, metadata))
            if self.api_key is not None and metadata.get("authorization") != f"Bearer {self.api_key}":
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "Request unauthorized.")
            if any(method.endswith(name) for name in self.denied):
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "Request unauthorized.")
            passed = [(key, value) for key, value in metadata.items() if key != "authorization"]
            try:
                answer: bytes = await upstream(request, metadata=passed, timeout=context.time_remaining())
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")
            return answer

        return forward


class _Forwarder(grpc.GenericRpcHandler):
    def __init__(self, proxy: TemporalProxy) -> None:
        self._proxy = proxy

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        return grpc.unary_unary_rpc_method_handler(
            self._proxy.handler(method), request_deserializer=_identity, response_serializer=_identity
        )
