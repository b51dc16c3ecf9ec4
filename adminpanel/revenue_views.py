"""Revenue recognition on the staff pages (issue 14, item 4): the deferred-revenue waterfall and
the month close. The schedule itself is written by invoicing.services.revenue when invoices are
finalized, credited or voided; these pages read it and close months."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import audit_actor
from adminpanel import journal
from adminpanel.views import _allowed
from core.errors import DomainError
from invoicing.models import AccountMap, RevenueMonthClose
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
        "accounts": journal.accounts_get(),
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


# -- accounting exports (issue 14, item 5) ---------------------------------------------------------


def _period(request) -> tuple[date, date] | None:
    try:
        start, end = date.fromisoformat(request.GET.get("from", "")), date.fromisoformat(request.GET.get("to", ""))
    except ValueError:
        return None
    return (start, end) if start <= end else None


PERIOD_REFUSED = "Give the period as from=YYYY-MM-DD&to=YYYY-MM-DD, from not after to."


@require_GET
def journal_csv(request):
    period = _period(request)
    if period is None:
        return HttpResponse(PERIOD_REFUSED, status=400, content_type="text/plain")
    response = StreamingHttpResponse([journal.journal_csv(journal.journal_lines(*period))], content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="journal-{period[0]}-{period[1]}.csv"'
    return response


@require_GET
def journal_xlsx(request):
    period = _period(request)
    if period is None:
        return HttpResponse(PERIOD_REFUSED, status=400, content_type="text/plain")
    response = HttpResponse(journal.journal_xlsx(journal.journal_lines(*period)), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="journal-{period[0]}-{period[1]}.xlsx"'
    return response


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@require_POST
def account_map(request):
    """Replace the tenant's account codes: `<role>_code` and `<role>_name` for every role of
    journal.DEFAULT_ACCOUNTS; refused whole (nothing written) when one is missing or too long."""
    _allowed(request, "invoicing.change_accountmap")
    accounts, missing = {}, []
    for role in journal.DEFAULT_ACCOUNTS:
        code = request.POST.get(f"{role}_code", "").strip()
        name = request.POST.get(f"{role}_name", "").strip()
        if not code or not name or len(code) > 20 or len(name) > 100:
            missing.append(role)
        accounts[role] = {"code": code, "name": name}
    if missing:
        return _page(
            request, error=f"Each account needs a code (≤ 20) and a name (≤ 100): {', '.join(missing)}.", status=400
        )
    with audit_actor(request.user), transaction.atomic():
        stored, _ = AccountMap.objects.select_for_update().get_or_create(pk=1)
        stored.accounts = accounts
        stored.save()
    messages.success(request, "Account map saved.")
    return redirect("adminpanel:revenue")
