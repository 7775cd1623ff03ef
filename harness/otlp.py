"""A local OTLP/HTTP trace receiver for the tracing tests (engine/tracing.py exports to it).

:class:`OtlpReceiver` is a tiny aiohttp server on a free loopback port taking
``POST /v1/traces`` (protobuf ``ExportTraceServiceRequest``, what OpenTelemetry's OTLP/HTTP
exporter sends) and keeping every span as a :class:`Span`, with the exporting process's
``service.name``. :func:`ancestors` walks a span's parents up to its trace's root.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status


@dataclass(frozen=True)
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    attributes: dict[str, object]
    failed: bool
    """The span's status is ERROR."""


def _value(v: AnyValue) -> object:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class OtlpReceiver:
    """``POST /v1/traces`` (OTLP/HTTP, protobuf): every span received, with its service name."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self.endpoint = ""
        """``http://127.0.0.1:PORT``: the value of ``OTEL_EXPORTER_OTLP_ENDPOINT`` for an exporter."""
        self._runner: web.AppRunner | None = None

    async def _traces(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        self.requests += 1
        for resource_spans in message.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for s in scope.spans:
                    self.spans.append(
                        Span(
                            service=str(resource.get("service.name")),
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex() or None,
                            name=s.name,
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            failed=s.status.code == Status.STATUS_CODE_ERROR,
                        )
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()  # the OS picks a free port
        host, port = self._runner.addresses[0][:2]
        self.endpoint = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def env(self) -> dict[str, str]:
        """Environment variables that make a process export its spans here, promptly."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # milliseconds: export while the process runs
        }


def ancestors(span: Span, by_id: dict[str, Span]) -> list[Span]:
    """``span``'s parent, its parent, ... up to the root (every parent must have been received)."""
    chain, current = [], span
    while current.parent_id is not None:
        assert current.parent_id in by_id, f"{current.name}: parent {current.parent_id} never received"
        current = by_id[current.parent_id]
        chain.append(current)
    return chain
