"""From a bill (billing.bill) to an invoice's content: tax per line and the totals. Pure: the
billing run, the finalization and every preview compose through here, so what a preview shows is
what the invoice holds.

- Tax is computed per line by the tax provider (invoicing.tax), on the line net of its own
  discount lines, rounded per line half-up; the line records rate, jurisdiction and reason, its
  discount lines carry the same rate and no tax of their own.
- With tax-exclusive prices (the default) a line's `amount` is net; with `prices_include_tax` it
  is gross and the tax is taken out of it (net = gross - tax, so the gross is kept exactly).
- subtotal = sum of nets, tax_total = sum of taxes, total = subtotal + tax_total; credits are
  applied after tax, at finalization (invoicing.services.finalize).
- A seller without an origin country has tax turned off: every line is untaxed. A customer the
  rules cannot place (no country, an unknown province) leaves the invoice with a `tax_problem`:
  it stays a draft until the customer's details are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing.bill import Bill, BillLine, LineKind
from core.money import Money
from invoicing.tax import LineTax, TaxCustomer, TaxError, TaxLineInput, TaxProvider, TaxSettings

ZERO = Decimal(0)


@dataclass(frozen=True)
class TaxContext:
    provider: TaxProvider
    settings: TaxSettings | None  # None: the seller has not configured tax
    customer: TaxCustomer


@dataclass(frozen=True)
class DraftLine:
    line: BillLine
    net_amount: Money
    tax_amount: Money
    tax_rate: Decimal | None
    tax_jurisdiction: str
    tax_reason: str
    taxes: tuple[LineTax, ...]


@dataclass(frozen=True)
class InvoiceDraft:
    subscription_id: int
    point: datetime
    currency: str
    lines: tuple[DraftLine, ...]
    subtotal: Money  # rounded to the currency's minor unit, as are the tax total and the total
    tax_total: Money
    total: Money
    period_start: datetime | None
    period_end: datetime | None
    tax_problem: str = ""

    @property
    def empty(self) -> bool:
        return not self.lines


def _untaxed(line: BillLine, net: Money, reason: str = "") -> DraftLine:
    return DraftLine(line, net, Money.zero(net.currency), None, "", reason, ())


def invoice_compose(bill: Bill, *, tax: TaxContext) -> InvoiceDraft:
    lines = bill.lines
    currency = bill.currency
    # each line's net before tax: its own amount and those of its discount lines
    nets: dict[int, Money] = {}
    for index, line in enumerate(lines):
        if line.kind == LineKind.DISCOUNT:
            assert line.discounts_line is not None
            nets[line.discounts_line] += line.amount
        else:
            nets[index] = line.amount
    problem = ""
    results = {}
    if tax.settings is not None and nets:
        inputs = [TaxLineInput(key=str(i), amount=a.rounded().amount, currency=currency) for i, a in nets.items()]
        try:
            # the date of supply is the bill point's date where the customer is
            supplied = bill.point.astimezone(ZoneInfo(bill.timezone))
            results = {
                int(r.key): r
                for r in tax.provider.tax_lines(settings=tax.settings, customer=tax.customer, lines=inputs, at=supplied)
            }
        except TaxError as exc:
            problem = f"{exc.code}: {exc.message}"
    drafted: list[DraftLine] = []
    for index, line in enumerate(lines):
        if line.kind == LineKind.DISCOUNT:
            # the rate and jurisdiction of the line it reduces; its effect is in that line's net
            parent = drafted[line.discounts_line]  # type: ignore[index]
            nil = Money.zero(currency)
            drafted.append(DraftLine(line, nil, nil, parent.tax_rate, parent.tax_jurisdiction, "", ()))
            continue
        result = results.get(index)
        if result is None:
            drafted.append(_untaxed(line, nets[index]))
            continue
        drafted.append(
            DraftLine(
                line=line,
                net_amount=Money(result.net_amount, currency),
                tax_amount=Money(result.tax_amount, currency),
                tax_rate=sum((t.rate for t in result.taxes), ZERO),
                tax_jurisdiction=" + ".join(t.jurisdiction for t in result.taxes),
                tax_reason=" ".join(dict.fromkeys(t.reason for t in result.taxes if t.reason)),
                taxes=result.taxes,
            )
        )
    own = [line for line in lines if line.kind != LineKind.CORRECTION] or list(lines)
    subtotal = sum((d.net_amount for d in drafted), Money.zero(currency))
    tax_total = sum((d.tax_amount for d in drafted), Money.zero(currency))
    return InvoiceDraft(
        subscription_id=bill.subscription_id,
        point=bill.point,
        currency=currency,
        lines=tuple(drafted),
        subtotal=subtotal.rounded(),
        tax_total=tax_total.rounded(),
        total=(subtotal + tax_total).rounded(),
        # the invoice's own period: corrections of earlier windows do not stretch it
        period_start=min((line.period_start for line in own), default=None),
        period_end=max((line.period_end for line in own), default=None),
        tax_problem=problem,
    )
