"""Request ids in logs, and OpenTelemetry tracing configured by the standard OTEL_* variables.

A tracer provider is always installed (so spans and trace ids exist for logs and tests), but
spans are exported only when OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT says where.
"""

from __future__ import annotations

import contextvars
import logging
import os

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_configured = False


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _exporters() -> list:
    names = {
        n.strip()
        for n in os.environ.get("OTEL_TRACES_EXPORTER", "").lower().split(",")
        if n.strip()
    }
    if not names and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        names = {"otlp"}
    exporters = []
    if "console" in names:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporters.append(ConsoleSpanExporter())
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter())  # endpoint, headers from OTEL_EXPORTER_OTLP_*
    unknown = names - {"console", "otlp", "none"}
    if unknown:
        logging.getLogger(__name__).warning("ignoring unknown OTEL_TRACES_EXPORTER %s", unknown)
    return exporters


def configure_tracing() -> None:
    """Install the tracer provider and instrument Django, once per process."""
    global _configured
    if _configured or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return
    _configured = True
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "controlplane")}
    )
    provider = TracerProvider(resource=resource)
    for exporter in _exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
