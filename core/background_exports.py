"""Files built in the background with progress (the portal's usage reports, the staff's accounting
exports): the request stores what was asked and enqueues a task on commit; the task runs
`file_export_run`, which claims the row, lets the builder report progress, and stores the files
under the tenant's media. The model is any with the fields this reads and writes: `status`
(pending, running, done, failed), `done`, `total`, `rows`, `error`, `finished_at` and a FileField
per file the builder returns."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.core.files.base import ContentFile
from django.utils import timezone

logger = logging.getLogger(__name__)
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"

# build(export, progress) -> (rows, {file field: (file name, bytes)}); progress(done, total)
Build = Callable[[Any, Callable[[int, int], None]], tuple[int, dict[str, tuple[str, bytes]]]]


def file_export_run(
    *, model: Any, export_id: int, build: Build, progress_every: int, related: Iterable[str] = ()
) -> str:
    """Build one export. Idempotent: only a pending (or, after a lost worker, running) export is
    claimed; a finished one is left as it is. A failure is recorded on the export, not retried
    (the sources are committed rows; asking again is the requester's button). Progress is
    written every `progress_every` steps and at the last: the pages poll once a second."""
    claimed = model.objects.filter(pk=export_id, status__in=[PENDING, RUNNING]).update(status=RUNNING, done=0)
    if not claimed:
        return "skipped"
    export = model.objects.select_related(*related).get(pk=export_id)

    def progress(done: int, total: int) -> None:
        if done % progress_every == 0 or done == total:
            model.objects.filter(pk=export_id).update(done=done, total=total)

    try:
        rows, files = build(export, progress)
        export.refresh_from_db(fields=["done", "total"])
        for field, (name, content) in files.items():
            getattr(export, field).save(name, ContentFile(content), save=False)
    except Exception as exc:  # recorded for the page; the log has the traceback
        logger.exception("export failed", extra={"model": model._meta.label, "export": export_id})
        model.objects.filter(pk=export_id).update(status=FAILED, error=str(exc)[:300], finished_at=timezone.now())
        return "failed"
    export.rows = rows
    export.status = DONE
    export.finished_at = timezone.now()
    export.save(update_fields=[*files, "rows", "status", "finished_at", "done", "total"])
    return "done"
