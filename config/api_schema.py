"""Schema generation hooks (SPECTACULAR_SETTINGS) and the schema view."""

from __future__ import annotations

import threading

from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

from metering.api.events_schema import EventsIngestSchemaView

EVENTS_PATH = "/api/v1/events"


def events_endpoint_add(endpoints):
    """drf-spectacular describes DRF views only; the ingestion endpoint is a plain view (no DRF on
    the hot path), so its schema-only stand-in is added at its path."""
    return [*endpoints, (EVENTS_PATH, r"^api/v1/events$", "POST", EventsIngestSchemaView.as_view())]


class CachedSchemaView(SpectacularAPIView):
    """/api/schema/ generated once per process and version instead of per request: the document
    depends only on the code (SERVE_PUBLIC: every caller sees every endpoint; no per-host servers),
    and generating it walks every view and serializer (~0.1 s). Authentication and the renderer
    (JSON or YAML) still run per request."""

    _documents: dict[str | None, dict] = {}
    _lock = threading.Lock()

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        document = self._documents.get(version)
        if document is None:
            with self._lock:
                document = self._documents.get(version)
                if document is None:
                    generator = self.generator_class(urlconf=self.urlconf, api_version=version, patterns=self.patterns)
                    document = generator.get_schema(request=request, public=self.serve_public)
                    self._documents[version] = document
        return Response(
            data=document,
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'},
        )
