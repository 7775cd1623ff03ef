"""Distributed tracing: OpenTelemetry spans, exported over OTLP/HTTP, on only when configured.

Tracing is on in a process that called :func:`configure` while ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; the exporter reads the other standard
``OTEL_*`` variables itself (headers, timeout, ``OTEL_BSP_*`` batching), and
``OTEL_SERVICE_NAME`` overrides the service name given. Then:

- :func:`interceptors` is Temporal's ``TracingInterceptor`` for ``Client.connect``
  (``engine.temporal.connect`` adds it; a worker inherits it from its client), so a release is
  one trace: the starter's span, the workflows' spans, their activities' spans;
- :func:`span` wraps one call to the outside world (router, Prometheus, registry, AWS,
  Kubernetes) in a span, a child of whatever span is current (an activity's).

Off (the default), :func:`span` is a ``nullcontext`` and nothing of OpenTelemetry is imported.
:func:`shutdown` flushes what is batched (starters before they exit, the worker when it stops).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer
    from temporalio.client import Interceptor
    from temporalio.contrib.opentelemetry import TracingInterceptor

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
INSTRUMENTATION = "deploy-code"

_provider: TracerProvider | None = None
_tracer: Tracer | None = None


def requested(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment asks for traces (an OTLP endpoint is set, the SDK not disabled)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def enabled() -> bool:
    """Whether this process exports spans (:func:`configure` found an endpoint)."""
    return _tracer is not None


def configure(service: str) -> bool:
    """Export this process's spans as ``service`` (unless ``OTEL_SERVICE_NAME`` names it) when
    an OTLP endpoint is set; the global tracer provider is set once. Returns whether tracing is on."""
    global _provider, _tracer  # one provider per process, like OpenTelemetry's own
    if _tracer is not None or not requested():
        return _tracer is not None
    from opentelemetry import trace  # noqa: PLC0415 - only where tracing is on
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    name = os.environ.get("OTEL_SERVICE_NAME", "").strip() or service
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider, _tracer = provider, provider.get_tracer(INSTRUMENTATION)
    return True


def shutdown() -> None:
    """Flush the spans still batched and stop exporting (a no-op when tracing is off)."""
    global _provider, _tracer  # noqa: PLW0603
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def interceptors() -> list[Interceptor]:
    """Temporal client (and so worker) interceptors: the tracing one when tracing is on."""
    return [_interceptor_class()(_tracer)] if _tracer is not None else []


@functools.cache
def _interceptor_class() -> type[TracingInterceptor]:
    """Temporal's ``TracingInterceptor``, except for queries: a starter following a release
    queries its status every half second, and a span for each would bury the release's own."""
    from temporalio.client import OutboundInterceptor, QueryWorkflowInput  # noqa: PLC0415
    from temporalio.contrib.opentelemetry import TracingInterceptor  # noqa: PLC0415

    class UntracedQueries(OutboundInterceptor):
        def __init__(self, traced: OutboundInterceptor, plain: OutboundInterceptor) -> None:
            super().__init__(traced)
            self._plain = plain

        async def query_workflow(self, input: QueryWorkflowInput) -> Any:
            return await self._plain.query_workflow(input)

    class Tracing(TracingInterceptor):
        def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
            return UntracedQueries(super().intercept_client(next), next)

    return Tracing


def _attribute(value: object) -> str | bool | int | float:
    return value if isinstance(value, str | bool | int | float) else str(value)


@contextlib.contextmanager
def _span(tracer: Tracer, name: str, attrs: dict[str, object]) -> Iterator[Span]:
    attributes = {key: _attribute(v) for key, v in attrs.items() if v is not None}
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


def span(name: str, **attrs: object) -> contextlib.AbstractContextManager[Span | None]:
    """A span around one call (attributes: ``attrs`` without the ``None`` ones), the current
    span's child; an exception raised inside is recorded and marks it failed. Yields the span
    (to add what the answer says) or, with tracing off, ``None`` at no cost."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _span(_tracer, name, attrs)


def start(name: str, **attrs: object) -> Span | None:
    """A span started now and ended by :func:`end`, for calls whose start and end are seen in
    two places (botocore's before-call and after-call events). Not made current."""
    if _tracer is None:
        return None
    return _tracer.start_span(name, attributes={k: _attribute(v) for k, v in attrs.items() if v is not None})


def end(current: Span | None, error: BaseException | str | None = None, **attrs: object) -> None:
    """End a span of :func:`start` with more ``attrs``, failed when there is an ``error`` (an
    exception, or what the answer says went wrong)."""
    if current is None:
        return
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

    for key, value in attrs.items():
        if value is not None:
            current.set_attribute(key, _attribute(value))
    if isinstance(error, BaseException):
        current.record_exception(error)
        error = f"{type(error).__name__}: {error}"
    if error is not None:
        current.set_status(Status(StatusCode.ERROR, error))
    current.end()
