from django.db.models import QuerySet

from metering.models import Meter


def meter_list() -> QuerySet[Meter]:
    return Meter.objects.order_by("name")
