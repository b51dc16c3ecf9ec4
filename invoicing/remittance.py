"""Remittance for payment by bank transfer: the reference a payer quotes, and the seller's bank
details, both checked with python-stdnum rather than by hand.

The reference is an ISO 11649 structured creditor reference ("RF" + two check digits + up to 21
letters or digits), the international form of the Finnish/Swiss/SEPA "RF" references that banking
apps validate as they are typed: a typo fails the mod-97 check instead of paying someone else's
invoice. Its body is the invoice number's letters and digits ("INV-000123" → RF… INV000123),
so it is readable on the phone and unique as the number is (a unique constraint on the invoice
holds it). A number longer than 21 such characters keeps its last 21 (the sequence digits are at
the end)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from stdnum import bic, iban, iso11649
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.iso7064 import mod_97_10
from stdnum.us import rtn

BODY_MAX = 21  # ISO 11649: at most 25 characters with "RF" and the check digits
_ALNUM = re.compile(r"[^0-9A-Z]")
# A candidate in text compacted to [0-9A-Z]: "RF", two digits, then the body (its length is
# unknown once spaces are gone: every length is tried against the checksum).
_START = re.compile(r"RF[0-9]{2}")


def payment_reference(number: str) -> str:
    """The creditor reference of invoice `number`, compact (print it with `reference_format`)."""
    body = _ALNUM.sub("", number.upper())[-BODY_MAX:]
    if not body:
        raise ValueError(f"invoice number {number!r} has no letters or digits")
    return iso11649.validate(f"RF{mod_97_10.calc_check_digits(body + 'RF')}{body}")


def reference_format(reference: str) -> str:
    """In groups of four ("RF18 INV0 0012 3"), as payers type it and banks print it."""
    return iso11649.format(reference)


def references_in(text: str) -> list[str]:
    """Every valid creditor reference written anywhere in `text` (a bank statement's description),
    whatever its spacing or case: "ref rf18 inv0 0012 3, thanks" finds RF18INV000123. Spaces
    inside a reference are removed before searching, so each "RFnn" is tried with every body
    length the checksum accepts; shorter valid prefixes are returned too (the caller keeps those
    that are real invoices)."""
    compact = _ALNUM.sub("", text.upper())
    found: list[str] = []
    for start in _START.finditer(compact):
        tail = compact[start.start() : start.start() + 4 + BODY_MAX]
        for end in range(5, len(tail) + 1):
            if iso11649.is_valid(tail[:end]) and tail[:end] not in found:
                found.append(tail[:end])
    return found


def _stdnum_check(module, value: str, what: str) -> None:
    try:
        module.validate(value)
    except StdnumError as exc:
        raise ValidationError(f"Not a valid {what}: {exc.message}.", code="invalid") from None


# Module-level functions (not closures): migrations refer to model validators by import path.
def validate_iban(value: str) -> None:
    _stdnum_check(iban, value, "IBAN")


def validate_bic(value: str) -> None:
    _stdnum_check(bic, value, "BIC")


def validate_routing_number(value: str) -> None:
    _stdnum_check(rtn, value, "US routing number")


def iban_compact(value: str) -> str:
    return iban.compact(value)


def iban_format(value: str) -> str:
    return iban.format(value) if value else ""


def bic_compact(value: str) -> str:
    return bic.compact(value)


def rtn_compact(value: str) -> str:
    return rtn.compact(value)


def remittance_rows(invoice) -> list[tuple[str, str]]:
    """What the invoice PDF and email print under "Pay by bank transfer": the seller's bank
    details as snapshotted at finalization and the reference to quote. Empty when there is
    nothing to pay or the seller gave no bank account."""
    bank = (invoice.seller or {}).get("bank") or {}
    if not bank or not invoice.payment_reference or invoice.amount_due <= 0 or invoice.status not in ("open",):
        return []
    rows = [("Account holder", bank.get("account_holder") or (invoice.seller or {}).get("name") or "")]
    if bank.get("bank_name"):
        rows.append(("Bank", bank["bank_name"]))
    if bank.get("iban"):
        rows.append(("IBAN", iban_format(bank["iban"])))
        if bank.get("bic"):
            rows.append(("BIC", bank["bic"]))
    if bank.get("account_number"):
        rows.append(("Account number", bank["account_number"]))
        rows.append(("Routing number (ABA)", bank.get("routing_number") or ""))
    rows.append(("Reference", reference_format(invoice.payment_reference)))
    return [(label, value) for label, value in rows if value]
