"""Card-expiry warnings: 30 and 7 days before the default card expires, once per card, expiry and
threshold (the constraint, reruns), from the expiry payments keeps on the payer row; none for a
card replaced before its warning left, for other methods, or for a card far from its expiry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core import mail
from django.db import IntegrityError, transaction

from billing.models import Organization
from core.models import OutboxMessage
from dunning.models import CardExpiryWarning
from dunning.services.run import dunning_run
from payments.models import PaymentCustomer
from payments.services.methods import payment_method_remove
from tests.dunning.conftest import Clock, card_set

pytestmark = pytest.mark.django_db
SUBJECT = "Your visa •••• 4242 expires at the end of 05/2027"  # good through 31 May: ends 1 Jun 00:00 UTC


EMAIL = "ap@acme.example"


@pytest.fixture
def acme(world):
    organization, _ = world
    Organization.objects.filter(pk=organization.pk).update(billing_email=EMAIL)
    organization.refresh_from_db()
    return organization


def at(month: int, day: int, hour: int = 1) -> datetime:
    return datetime(2027, month, day, hour, tzinfo=UTC)


def warnings() -> list[tuple[str, int, str]]:
    return list(CardExpiryWarning.objects.order_by("pk").values_list("payment_method_id", "days", "emailed_to"))


def test_the_default_cards_expiry_is_kept_on_the_payer_and_cleared_with_it(world, gateway):
    organization, _ = world
    card_set(organization, gateway, "pm_4242", "ok", expires="05/2027")
    payer = PaymentCustomer.objects.get(organization=organization)
    assert (payer.default_card_exp_month, payer.default_card_exp_year) == (5, 2027)
    card_set(organization, gateway, "pm_3000", "ok", kind="sepa_debit")
    payer.refresh_from_db()
    assert (payer.default_card_exp_month, payer.default_card_exp_year) == (None, None)
    card_set(organization, gateway, "pm_4242", "ok", expires="05/2027")
    payment_method_remove(actor=None, organization=organization, payment_method_id="pm_4242")
    payer.refresh_from_db()
    assert (payer.default_payment_method_id, payer.default_card_exp_month, payer.default_card_exp_year) == (
        "",
        None,
        None,
    )


def test_warned_30_then_7_days_ahead_once_each(acme, gateway, email_backend):
    organization = acme
    card_set(organization, gateway, "pm_4242", "ok", expires="05/2027")
    clock = Clock(start=at(4, 1))
    clock.run(at(4, 30))  # 32 days ahead
    clock.run(at(5, 1, 23))  # 30 days and one hour ahead
    assert warnings() == [] and mail.outbox == []
    clock.run(at(5, 2))  # 30 days ahead have come
    clock.run(at(5, 2, 2))
    clock.run(at(5, 20))
    assert warnings() == [("pm_4242", 30, EMAIL)]
    assert [m.subject for m in mail.outbox] == [SUBJECT]
    assert mail.outbox[0].to == [EMAIL]
    assert "/organizations/acme/payment-methods/" in mail.outbox[0].body
    clock.run(at(5, 25))  # 7 days ahead
    clock.run(at(5, 25, 2))
    clock.run(at(5, 31, 23))
    clock.run(at(6, 1))  # expired: nothing more
    assert warnings() == [("pm_4242", 30, EMAIL), ("pm_4242", 7, EMAIL)]
    assert [m.subject for m in mail.outbox] == [SUBJECT, SUBJECT]
    assert OutboxMessage.objects.filter(kind="dunning.card_expiry_email").count() == 2
    with pytest.raises(IntegrityError), transaction.atomic():  # the constraint, whatever a run does
        CardExpiryWarning.objects.create(
            organization=organization, payment_method_id="pm_4242", exp_month=5, exp_year=2027, days=7, at=at(6, 1)
        )


def test_a_run_that_missed_the_30_day_warning_sends_only_the_7_day_one(acme, gateway, email_backend):
    organization = acme
    card_set(organization, gateway, "pm_4242", "ok", expires="05/2027")
    clock = Clock(start=at(4, 1))
    clock.run(at(5, 26))
    clock.run(at(5, 27))
    assert warnings() == [("pm_4242", 7, EMAIL)]
    assert [m.subject for m in mail.outbox] == [SUBJECT]


def test_no_warning_for_other_methods_far_expiries_or_a_card_replaced_before_it_left(acme, gateway, email_backend):
    organization = acme
    card_set(organization, gateway, "pm_3000", "ok", kind="sepa_debit")
    clock = Clock(start=at(4, 1))
    clock.run(at(5, 26))
    card_set(organization, gateway, "pm_1111", "ok", expires="12/2027")
    clock.run(at(5, 27))
    assert warnings() == [] and mail.outbox == []
    card_set(organization, gateway, "pm_4242", "ok", expires="05/2027")
    dunning_run(at=at(5, 28))  # the warning written, its email not sent yet
    assert [w[:2] for w in warnings()] == [("pm_4242", 7)]
    card_set(organization, gateway, "pm_5555", "ok", expires="01/2030")  # replaced meanwhile
    clock.work_outbox(at(5, 28, 2))
    assert mail.outbox == [] and warnings() == [("pm_4242", 7, "")]
