"""Revenue recognition on the staff pages (issue 14, item 4): the deferred-revenue waterfall and
the month close. The schedule itself is written by invoicing.services.revenue when invoices are
finalized, credited or voided; these pages read it and close months."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from adminpanel.views import _allowed
from core.errors import DomainError
from invoicing.models import RevenueMonthClose
from invoicing.selectors.revenue import month_add, revenue_currencies, revenue_waterfall_get
from invoicing.services.revenue import revenue_month_close

MONTHS = 12


def _month(raw: str) -> date | None:
    """YYYY-MM as the month's first day; None when it is not one."""
    try:
        year, month = raw.split("-")
        if len(year) != 4 or len(month) != 2:
            return None
        return date(int(year), int(month), 1)
    except ValueError:
        return None


def _page(request, *, error: str = "", status: int = 200):
    # accounts.middleware.StaffAccessMiddleware admits only staff who passed their second factor.
    currencies = revenue_currencies()
    currency = request.GET.get("currency") or (currencies[0] if currencies else "")
    today = timezone.now().date().replace(day=1)
    raw = request.GET.get("from", "")
    start = _month(raw) if raw else month_add(today, 1 - MONTHS)
    if start is None:
        start, error, status = month_add(today, 1 - MONTHS), f"“{raw[:20]}” is not a month: use YYYY-MM.", 400
    if currency and currency not in currencies:
        currency, error, status = "", f"No revenue in “{currency[:3]}”.", 400
    context = {
        "section": "revenue",
        "currencies": currencies,
        "currency": currency,
        "start": start,
        "waterfall": revenue_waterfall_get(currency=currency, start=start, months=MONTHS) if currency else None,
        "closes": RevenueMonthClose.objects.select_related("closed_by")[:24],
        "error": error,
    }
    return render(request, "adminpanel/revenue.html", context, status=status)


@require_GET
def revenue(request):
    return _page(request)


@require_POST
def revenue_close(request):
    """Close a month; refused (nothing written) unless it has ended, is open and every earlier
    month holding revenue is closed."""
    _allowed(request, "invoicing.add_revenuemonthclose")
    month = _month(request.POST.get("month", ""))
    if month is None:
        return _page(request, error="Give the month to close as YYYY-MM.", status=400)
    try:
        revenue_month_close(actor=request.user, month=month)
    except DomainError as error:
        return _page(request, error=error.message, status=error.status_code)
    messages.success(request, f"{month:%Y-%m} is closed: later corrections land in the first open month.")
    return redirect("adminpanel:revenue")
