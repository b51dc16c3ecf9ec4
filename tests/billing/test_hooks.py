"""billing.hooks: a preview never runs without invoicing's providers. A missing provider raises
HookMissing where it is called and fails the system check billing.E001, instead of reading as
"nothing was invoiced" (a preview that silently differs from the invoice)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core import checks

from billing import hooks
from billing.apps import hooks_check
from billing.selectors.bill import bill_get

AT = datetime(2027, 1, 1, tzinfo=UTC)


def test_invoicing_installs_every_provider_and_the_check_is_registered():
    assert hooks.hooks_missing() == []
    assert hooks_check() == []
    # (run_checks() itself also runs checks that need the database, closed to these tests)
    assert hooks_check in checks.registry.registry.get_checks()


@pytest.mark.parametrize("name", hooks.HOOKS)
def test_a_missing_provider_fails_the_system_check(monkeypatch, name):
    monkeypatch.delitem(hooks._providers, name)
    assert hooks.hooks_missing() == [name]
    [error] = hooks_check()
    assert (error.id, error.level) == ("billing.E001", checks.ERROR)
    assert error.msg == f"billing.hooks: no {name!r} provider is installed."


@pytest.mark.parametrize(
    ("name", "call"),
    [
        (hooks.COUPON_USED, lambda: hooks.coupon_used_provider(object(), AT)),
        (hooks.BILLED, lambda: hooks.billed_provider(object())),
        (hooks.FEES, lambda: hooks.fees_provider(object())),
    ],
)
def test_calling_a_missing_provider_raises(monkeypatch, name, call):
    monkeypatch.delitem(hooks._providers, name)
    with pytest.raises(hooks.HookMissing, match=f"no {name!r} provider is installed"):
        call()


def test_a_preview_without_a_provider_raises_before_reading_anything(monkeypatch):
    """bill_get (every preview in billing) asks the hooks first. The database is closed to this
    test (no django_db mark): a query would raise pytest-django's RuntimeError instead."""
    monkeypatch.delitem(hooks._providers, hooks.BILLED)
    with pytest.raises(hooks.HookMissing):
        bill_get(object(), AT)
