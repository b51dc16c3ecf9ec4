"""Card-expiry warnings: 30 and 7 days before the organization's default card expires (a card is
good through the last day of its expiry month), one email per card and threshold. The dunning run
calls `card_expiry_warnings_take` every hour; the expiry is the one payments keeps on the payer
row when the card is made the default (`PaymentCustomer.default_card_exp_month/_year`), so the
gateway is not asked. Each warning is a `CardExpiryWarning` row (unique per card, expiry and
threshold) written with its outbox message; the handler sends outside any lock and marks the row
by a conditional update, as dunning's other emails do. A warning whose card was replaced before
it left is not sent."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_actor, audit_event
from billing.models import OrganizationStatus
from core.models import OutboxMessage
from core.services.outbox import outbox_add, outbox_register
from dunning.models import CardExpiryWarning
from dunning.policy import CARD_EXPIRY_WARNING_DAYS
from payments.gateways.base import MethodType
from payments.models import PaymentCustomer
from payments.services.emails import tenant_url

logger = logging.getLogger(__name__)

EMAIL_KIND = "dunning.card_expiry_email"
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720))
LEASE = timedelta(minutes=5)
DAY = timedelta(days=1)


def card_expires_at(*, month: int, year: int) -> datetime:
    """The first instant the card no longer works: the start of the month after its expiry
    month (UTC: the networks do not say in which zone)."""
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _months(start: datetime, end: datetime) -> list[tuple[int, int]]:
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def card_expiry_warnings_take(at: datetime) -> int:
    """Write the warnings due at `at`: for each default card that expires within the largest
    threshold, the nearest threshold passed (a run that missed the 30-day warning does not send it
    with the 7-day one). The number written."""
    window = _months(at.astimezone(UTC), (at + max(CARD_EXPIRY_WARNING_DAYS) * DAY).astimezone(UTC))
    expiring = Q()
    for year, month in window:
        expiring |= Q(default_card_exp_year=year, default_card_exp_month=month)
    payers = (
        PaymentCustomer.objects.filter(expiring, default_method_type=MethodType.CARD)
        .exclude(default_payment_method_id="")
        .exclude(organization__status=OrganizationStatus.CLOSED)
    )
    taken = set(
        CardExpiryWarning.objects.filter(organization_id__in=payers.values("organization_id")).values_list(
            "organization_id", "payment_method_id", "exp_year", "exp_month", "days"
        )
    )
    written = 0
    for payer in payers:
        month, year = payer.default_card_exp_month, payer.default_card_exp_year
        ends = card_expires_at(month=month, year=year)
        passed = [days for days in sorted(CARD_EXPIRY_WARNING_DAYS) if ends - days * DAY <= at < ends]
        if not passed:
            continue
        key = (payer.organization_id, payer.default_payment_method_id, year, month, passed[0])
        if key in taken:
            continue
        try:
            with transaction.atomic():
                warning = CardExpiryWarning.objects.create(
                    organization_id=payer.organization_id,
                    payment_method_id=payer.default_payment_method_id,
                    label=payer.default_method_label,
                    exp_month=month,
                    exp_year=year,
                    days=passed[0],
                    at=at,
                )
                outbox_add(kind=EMAIL_KIND, key=f"card-expiry:{warning.pk}", payload={"warning_id": warning.pk})
        except IntegrityError:  # a concurrent run wrote it
            continue
        written += 1
    return written


def card_expiry_email_send(*, warning_id: int) -> bool:
    """Send the warning once; True if this call sent it."""
    warning = CardExpiryWarning.objects.select_related("organization").get(pk=warning_id)
    if warning.emailed_at is not None:
        return False
    organization = warning.organization
    payer = PaymentCustomer.objects.filter(organization=organization).first()
    current = payer and (payer.default_payment_method_id, payer.default_card_exp_month, payer.default_card_exp_year)
    if current != (warning.payment_method_id, warning.exp_month, warning.exp_year):
        return False  # replaced or updated since: nothing to warn about
    recipient = organization.billing_email
    if not recipient:
        logger.info("card expiry warning not sent: no billing email", extra={"warning": warning.pk})
        return False
    context = {
        "customer_name": organization.name,
        "label": warning.label or "card",
        "expires": f"{warning.exp_month:02d}/{warning.exp_year}",
        "days": warning.days,
        "link": tenant_url(reverse("portal:payment_methods", args=[organization.external_id])),
    }
    context["subject"] = f"Your {context['label']} expires at the end of {context['expires']}"
    message = EmailMultiAlternatives(
        subject=context["subject"],
        body=render_to_string("dunning/email/card_expiry.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        headers={"Message-ID": f"<card-expiry.{connection.schema_name}.{warning.pk}@{DNS_NAME}>"},
    )
    message.attach_alternative(render_to_string("dunning/email/card_expiry.html", context), "text/html")
    message.send(fail_silently=False)
    with audit_actor(None), transaction.atomic():
        marked = CardExpiryWarning.objects.filter(pk=warning.pk, emailed_at=None).update(
            emailed_at=timezone.now(), emailed_to=recipient
        )
        if marked:
            audit_event(organization, event="dunning.email.card_expiry", days=warning.days, to=recipient)
    return True


def _handle(message: OutboxMessage) -> None:
    card_expiry_email_send(warning_id=message.payload["warning_id"])


def card_expiry_emails_register() -> None:
    outbox_register(EMAIL_KIND, handler=_handle, retry_delays=RETRY_DELAYS, lease=LEASE)
