"""When each invoice was written off (marked uncollectible), for receivables as of a past day.

Invoices written off before this column existed get the time of the audit entry that recorded their
status becoming uncollectible (django-auditlog's diff of the invoice, the latest one if it went
there more than once); one still uncollectible without such an entry gets its `updated_at`, the
last time the row changed, which is no earlier than the write-off. Paid or voided invoices that
were written off in between are found only through the audit entries."""

from django.db import migrations, models
from django.db.models import Max


def uncollectible_at_backfill(apps, schema_editor):
    Invoice = apps.get_model("invoicing", "Invoice")
    LogEntry = apps.get_model("auditlog", "LogEntry")
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_type = ContentType.objects.filter(app_label="invoicing", model="invoice").first()
    if content_type is not None:
        written_off = (
            LogEntry.objects.filter(content_type=content_type, changes__status__1="uncollectible")
            .values("object_id")
            .annotate(at=Max("timestamp"))
        )
        for row in written_off.iterator():
            Invoice.objects.filter(pk=row["object_id"], uncollectible_at__isnull=True).update(
                uncollectible_at=row["at"]
            )
    Invoice.objects.filter(status="uncollectible", uncollectible_at__isnull=True).update(
        uncollectible_at=models.F("updated_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0005_accounting_export"),
        ("auditlog", "0017_add_actor_email"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="uncollectible_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(uncollectible_at_backfill, migrations.RunPython.noop),
    ]
