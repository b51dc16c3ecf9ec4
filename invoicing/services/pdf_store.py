"""The invoice PDF as a document: rendered and stored once per finalized invoice, then served.

- `invoice_pdf_store` renders once and keeps the file: the PDF is the document the customer
  received; a later change of branding or template never rewrites it.
- `invoice_pdf_open` serves it. Voiding writes no new file either: a void invoice's PDF is served
  as the stored document with a VOID stamp and the voiding date laid over every page (pypdf), so
  the document as issued (and its SHA-256) stays what it was, and no served copy of a void invoice
  can be mistaken for a payable one.
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO

from django.core.files.base import ContentFile
from django.db import connection, transaction

from core.errors import DomainError
from invoicing import pdf_render
from invoicing.locks import invoice_lock
from invoicing.models import Invoice, InvoiceStatus


def invoice_pdf_path(*, invoice: Invoice) -> str:
    """invoices/<schema>/<number>.pdf (a "/" allowed in number prefixes becomes "_")."""
    number = (invoice.number or "").replace("/", "_").replace("\\", "_")
    return f"invoices/{connection.schema_name}/{number}.pdf"


def invoice_pdf_store(*, invoice: Invoice) -> Invoice:
    """Render the finalized invoice's PDF and store it, once: an invoice that already has its PDF
    is returned as it is, never re-rendered. Rendering (the slow part) happens outside any lock;
    the row is locked only to re-check and write the file and its name, so of two concurrent
    calls one stores and the other keeps what is stored. Saves only `pdf` and `pdf_sha256` (the
    audit log records the change).

    The file is written before the transaction commits; if the commit fails, the next attempt
    overwrites that orphan (same name; no committed invoice refers to it, the number is unique)."""
    if invoice.pdf:
        return invoice
    if invoice.status == InvoiceStatus.DRAFT:
        raise DomainError(
            f"Invoice {invoice} is not finalized: a draft has no PDF.", code="invoice_not_final", status_code=409
        )
    stored = Invoice.objects.filter(pk=invoice.pk).values_list("pdf", "pdf_sha256").get()
    if not stored[0]:
        data = pdf_render.invoice_pdf_render(invoice=invoice)  # a finalized invoice's content never changes
        with transaction.atomic(durable=True):
            locked = invoice_lock(invoice.pk)
            if not locked.pdf:
                storage = locked.pdf.storage
                name = invoice_pdf_path(invoice=locked)
                if storage.exists(name):
                    storage.delete(name)
                locked.pdf.name = storage.save(name, ContentFile(data))
                locked.pdf_sha256 = hashlib.sha256(data).hexdigest()
                locked.save(update_fields=["pdf", "pdf_sha256"])
            stored = (locked.pdf.name, locked.pdf_sha256)
    invoice.pdf, invoice.pdf_sha256 = stored
    return invoice


def invoice_pdf_open(*, invoice: Invoice) -> BinaryIO:
    """The PDF as served (admin, API), open for reading: the stored document, stored first if the
    delivery task has not run yet. A void invoice's is the stored document with a VOID stamp over
    every page (invoicing.pdf_render.invoice_pdf_void_stamp). Raises FileNotFoundError if the stored file is gone: the
    document as issued is never silently replaced by a new rendering."""
    if not invoice.pdf:
        invoice = invoice_pdf_store(invoice=invoice)
    stored = invoice.pdf.open("rb")
    if invoice.status != InvoiceStatus.VOID:
        return stored
    with stored:
        data = stored.read()
    return io.BytesIO(pdf_render.invoice_pdf_void_stamp(data, invoice=invoice))
