"""The compliance dashboard's live checks (issue 14 item 6), the second approver of staff credits
and refunds, and GDPR export and erasure.

Each check looks at the tenant's data or configuration as it is now and stores its result in
ComplianceCheck (with the time it last passed), so the page says what was verified and when
rather than what the platform is meant to do. Beat runs them daily in every tenant
(adminpanel.compliance_run); staff rerun them from the page."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import CharField, Exists, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.audit import Actor, audit_actor, audit_event
from accounts.backends import staff_role_allows
from accounts.models import StaffRole, User
from adminpanel.models import ApprovalThreshold, ComplianceCheck
from billing.models import GRANT_KINDS, CreditEntry, Membership, Organization
from core import crypto
from core.logs import pan_mask
from invoicing.models import CreditNote, Invoice
from invoicing.models.invoice import FINAL_STATUSES
from metering.models import Event
from payments.models import GatewaySettings, Payment, Refund

FINDINGS_KEPT = 50
# The card scan reads at most this many rows of each text/JSON column (the newest physical rows
# are not known to PostgreSQL without an index, so it is the first rows of each table): a
# bounded scan that a tenant with a billion raw events can still run daily.
SCAN_ROWS_PER_COLUMN = 200_000
# A run of 13 to 19 digits, optionally grouped by spaces or dashes: the candidates PostgreSQL
# returns; core.logs.pan_mask then applies Luhn (the same detector the log formatter masks with).
_CANDIDATE = r"[0-9]([ -]?[0-9]){12,18}"
# Our results table is not scanned: its findings name columns, never values.
_SCAN_SKIP = {"adminpanel_compliancecheck"}


@dataclass
class Result:
    passed: bool
    summary: str
    findings: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    key: str
    group: str
    title: str
    run: Callable[[], Result]


# -- PCI SAQ-A ------------------------------------------------------------------------------------


def _text_columns() -> list[tuple[str, str]]:
    """(table, column) of every text, varchar and JSON column of the tenant's schema, partitions
    left out (their parent table reads them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c"
            " JOIN pg_class k ON k.relname = c.table_name"
            " JOIN pg_namespace n ON n.oid = k.relnamespace AND n.nspname = c.table_schema"
            " WHERE c.table_schema = %s AND k.relkind IN ('r', 'p') AND NOT k.relispartition"
            " AND c.data_type IN ('text', 'character varying', 'json', 'jsonb')"
            " ORDER BY c.table_name, c.column_name",
            [connection.schema_name],
        )
        return [row for row in cursor.fetchall() if row[0] not in _SCAN_SKIP]


def check_card_numbers() -> Result:
    """No value that looks like a card number (13 to 19 digits, passing Luhn) in any text or JSON
    column: SAQ-A means card data only ever reaches the gateway."""
    q = connection.ops.quote_name
    findings, columns = [], _text_columns()
    with connection.cursor() as cursor:
        for table, column in columns:
            cursor.execute(
                # identifiers from information_schema, quoted; values are parameters
                f"SELECT v FROM (SELECT {q(column)}::text AS v FROM {q(table)} LIMIT %s) s WHERE v ~ %s LIMIT 100",  # noqa: S608
                [SCAN_ROWS_PER_COLUMN, _CANDIDATE],
            )
            hits = sum(1 for (value,) in cursor.fetchall() if pan_mask(value) != value)
            if hits:
                findings.append(f"{table}.{column}: {hits} value(s) with a card number")
    if findings:
        return Result(False, f"Card numbers stored in {len(findings)} column(s).", findings, {"columns": len(columns)})
    return Result(True, f"No card number in {len(columns)} text/JSON columns.", figures={"columns": len(columns)})


def _plaintext_secret_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s"
            " AND data_type IN ('text', 'character varying') AND column_name ~ '(secret|api_key|private_key)'"
            " AND column_name !~ '_encrypted$' ORDER BY table_name, column_name",
            [connection.schema_name],
        )
        return cursor.fetchall()


def check_secrets_encrypted() -> Result:
    """Every stored gateway and webhook secret opens with the current keys (core.crypto: a
    plaintext value or one under a dropped key does not), and no column named like a secret
    without `_encrypted` holds a value (dj-stripe's own key table, for one)."""
    from core.models import WebhookEndpoint

    findings, opened = [], 0
    encrypted = [
        (GatewaySettings, ("stripe_secret_key_encrypted", "stripe_webhook_secret_encrypted")),
        (GatewaySettings, ("paypal_client_secret_encrypted",)),
        (WebhookEndpoint, ("secret_encrypted", "previous_secret_encrypted")),
    ]
    for model, names in encrypted:
        for row in model.objects.only("pk", *names):
            for name in names:
                token = getattr(row, name)
                if not token:
                    continue
                try:
                    crypto.decrypt(token)
                    opened += 1
                except crypto.InvalidToken:
                    findings.append(f"{model._meta.db_table}.{name} (row {row.pk}): not encrypted under a current key")
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table, column in _plaintext_secret_columns():
            cursor.execute(f"SELECT count(*) FROM {q(table)} WHERE coalesce({q(column)}, '') <> ''")  # noqa: S608
            (count,) = cursor.fetchone()
            if count:
                findings.append(f"{table}.{column}: {count} plaintext value(s)")
    if findings:
        return Result(False, f"{len(findings)} secret(s) stored in clear or unreadable.", findings, {"opened": opened})
    return Result(True, f"{opened} stored secret(s), each encrypted under a current key.", figures={"opened": opened})


HSTS_MIN_SECONDS = 31_536_000  # one year: what browsers' preload lists ask for


def check_tls_settings() -> Result:
    """The production env's transport settings, read from the running settings (config/settings.py
    sets them only when DJANGO_ENV=production). Elsewhere (development, test) the check reports
    that it does not apply and passes: those servers are not exposed."""
    if settings.DJANGO_ENV != "production":
        return Result(
            True, f"Not production (DJANGO_ENV={settings.DJANGO_ENV}): production settings not in force here."
        )
    wanted = {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    }
    findings = [
        f"{name} is {getattr(settings, name, None)!r}, not {value!r}"
        for name, value in wanted.items()
        if getattr(settings, name, None) != value
    ]
    hsts = getattr(settings, "SECURE_HSTS_SECONDS", 0) or 0
    if hsts < HSTS_MIN_SECONDS:
        findings.append(f"SECURE_HSTS_SECONDS is {hsts}, below {HSTS_MIN_SECONDS}")
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is None:
        findings.append("SECURE_PROXY_SSL_HEADER is not set (TLS terminates at the proxy)")
    if findings:
        return Result(False, f"{len(findings)} transport setting(s) weaker than required.", findings)
    return Result(True, f"HTTPS redirect, HSTS {hsts} s with subdomains, secure cookies.")


# -- SOX-style controls ---------------------------------------------------------------------------


def _unaudited(queryset: QuerySet, *, event: str | None = None) -> QuerySet:
    """The rows of `queryset` with no audit entry (or none for `event`, a domain event's name)."""
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(queryset.model),
        object_pk=Cast(OuterRef("pk"), CharField()),
    )
    if event is not None:
        entries = entries.filter(changes__event__1=event)
    return queryset.filter(~Exists(entries))


def money_actions() -> list[tuple[str, QuerySet, str | None]]:
    """(label, rows, event) of every money-changing action the audit trail must cover."""
    return [
        ("finalized invoices", Invoice.objects.filter(status__in=FINAL_STATUSES), "invoice.finalized"),
        ("credit notes", CreditNote.objects.all(), None),
        ("refunds", Refund.objects.all(), None),
        ("payments", Payment.objects.all(), None),
        ("credit grants", CreditEntry.objects.filter(kind__in=GRANT_KINDS), None),
    ]


def check_audit_coverage() -> Result:
    """Each money-changing row matched to its audit entries, counted: the unmatched are listed."""
    findings, figures = [], {}
    for label, rows, event in money_actions():
        missing = _unaudited(rows, event=event).order_by("pk")
        count = missing.count()
        figures[label] = {"rows": rows.count(), "unaudited": count}
        findings += [f"{label}: {row} (id {row.pk}) has no audit entry" for row in missing[:FINDINGS_KEPT]]
    unaudited = sum(f["unaudited"] for f in figures.values())
    total = sum(f["rows"] for f in figures.values())
    if unaudited:
        return Result(False, f"{unaudited} of {total} money-changing rows have no audit entry.", findings, figures)
    return Result(True, f"All {total} money-changing rows have their audit entry.", figures=figures)


def currencies_in_use() -> list[str]:
    return sorted(set(Organization.objects.values_list("currency", flat=True)))


def check_second_approver() -> Result:
    """A second-approver threshold is set for every currency an organization bills in."""
    set_for = set(ApprovalThreshold.objects.values_list("currency", flat=True))
    missing = [currency for currency in currencies_in_use() if currency not in set_for]
    if missing:
        return Result(
            False, f"No approval threshold for {', '.join(missing)}.", [f"no threshold: {c}" for c in missing]
        )
    return Result(True, f"Thresholds set for {len(set_for)} currenc{'y' if len(set_for) == 1 else 'ies'}.")


# Who may do the money actions a SOX review asks about, from the role backend itself.
CONTROLLED_ACTIONS = [
    ("Finalize an invoice", "invoicing.change_invoice"),
    ("Void an invoice", "invoicing.change_invoice"),
    ("Issue a credit note", "invoicing.add_creditnote"),
    ("Refund a payment", "payments.add_refund"),
    ("Grant credit", "billing.add_creditentry"),
    ("Set approval thresholds", "adminpanel.change_approvalthreshold"),
]


def roles_table() -> list[tuple[str, str, list[bool]]]:
    """(action, permission, [allowed for each StaffRole in order])."""
    return [
        (label, perm, [staff_role_allows(role, perm) for role in StaffRole.values])
        for label, perm in CONTROLLED_ACTIONS
    ]


# -- GDPR -----------------------------------------------------------------------------------------


def check_event_retention(*, now: datetime | None = None) -> Result:
    """Raw events older than EVENT_RAW_RETENTION_DAYS are gone: partitions are monthly and
    dropped once wholly past the cutoff (metering.services.partitions), so the oldest event may
    be at most the cutoff's month start."""
    now = now or timezone.now()
    days = settings.EVENT_RAW_RETENTION_DAYS
    cutoff = now - timedelta(days=days)
    limit = cutoff.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    oldest = Event.objects.aggregate(oldest=Min("timestamp"))["oldest"]
    figures = {"retention_days": days, "oldest": oldest.isoformat() if oldest else None}
    if oldest is None:
        return Result(True, f"Retention {days} days; no raw event stored.", figures=figures)
    age = (now - oldest).days
    figures["oldest_age_days"] = age
    if oldest < limit:
        finding = f"oldest raw event {oldest:%Y-%m-%d} ({age} days) is before {limit:%Y-%m-%d}"
        return Result(False, f"Raw events kept past the {days}-day retention.", [finding], figures)
    return Result(True, f"Retention {days} days; oldest raw event {age} days old.", figures=figures)


CHECKS = [
    Check("pci_card_numbers", "PCI SAQ-A", "No card numbers stored", check_card_numbers),
    Check("pci_secrets_encrypted", "PCI SAQ-A", "Gateway secrets encrypted", check_secrets_encrypted),
    Check("pci_tls", "PCI SAQ-A", "Production TLS, HSTS and secure cookies", check_tls_settings),
    Check("sox_audit_coverage", "SOX controls", "Every money-changing action audited", check_audit_coverage),
    Check("sox_second_approver", "SOX controls", "Second approver threshold per currency", check_second_approver),
    Check("gdpr_event_retention", "GDPR", "Raw event retention", check_event_retention),
]


def compliance_run(*, keys: list[str] | None = None) -> list[ComplianceCheck]:
    """Run the checks (all, or `keys`) now and store each result; a check that raises is stored
    as failed with the error's class, so one broken check does not hide the others."""
    now = timezone.now()
    stored = []
    for check in CHECKS:
        if keys is not None and check.key not in keys:
            continue
        try:
            result = check.run()
        except Exception as exc:  # noqa: BLE001 - recorded as the check's failure
            result = Result(False, f"The check could not run: {type(exc).__name__}.", [pan_mask(str(exc))[:300]])
        row, _ = ComplianceCheck.objects.get_or_create(
            key=check.key, defaults={"passed": result.passed, "ran_at": now, "summary": ""}
        )
        row.passed, row.ran_at, row.summary = result.passed, now, result.summary[:300]
        row.findings, row.figures = result.findings[:FINDINGS_KEPT], result.figures
        if result.passed:
            row.last_passed_at = now
        row.save()
        stored.append(row)
    return stored


# -- second approver ------------------------------------------------------------------------------


def approval_threshold_get(currency: str) -> Decimal | None:
    row = ApprovalThreshold.objects.filter(currency=currency).first()
    return row.amount if row else None


def approval_needed(amount: Decimal, currency: str) -> Decimal | None:
    """The threshold `amount` is above (a second approver is needed), else None."""
    threshold = approval_threshold_get(currency)
    return threshold if threshold is not None and amount > threshold else None


# -- GDPR export and erasure ----------------------------------------------------------------------


def _csv(header: list[str], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _iso(value) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def gdpr_export(organization: Organization, *, usage: Callable[[Organization], object]) -> bytes:
    """The organization's data as a ZIP: organization.json, people.csv (members and the billing
    contact), invoices.csv, payments.csv, usage.csv (`usage(organization)`, the staff page's
    per-meter daily usage of the last 30 UTC days). Amounts as decimal strings with currency."""
    members = Membership.objects.filter(organization=organization).select_related("user").order_by("pk")
    people = [["member", m.user.name, m.user.email, m.role, _iso(m.created_at)] for m in members]
    if organization.billing_email:
        people.append(["billing_contact", "", organization.billing_email, "", ""])
    profile = {
        name: getattr(organization, name)
        for name in (
            "external_id",
            "name",
            "billing_email",
            "currency",
            "timezone",
            "country",
            "address_line1",
            "address_line2",
            "city",
            "region",
            "postal_code",
            "tax_id",
            "status",
            "metadata",
        )
    }
    profile["created_at"] = _iso(organization.created_at)
    invoices = Invoice.objects.filter(organization=organization).order_by("pk")
    payments = Payment.objects.filter(organization=organization).select_related("invoice").order_by("pk")
    window = usage(organization)
    usage_rows = [
        [m.meter.code, day.isoformat(), "" if value is None else f"{value}"]
        for m in window.meters
        for day, value in m.days
    ]
    files = {
        "organization.json": json.dumps(profile, indent=2, default=str),
        "people.csv": _csv(["kind", "name", "email", "role", "since"], people),
        "invoices.csv": _csv(
            [
                "number",
                "status",
                "currency",
                "subtotal",
                "tax_total",
                "total",
                "amount_paid",
                "amount_due",
                "period_start",
                "period_end",
                "issued_at",
                "due_at",
                "paid_at",
            ],
            [
                [
                    i.number or "",
                    i.status,
                    i.currency,
                    i.subtotal,
                    i.tax_total,
                    i.total,
                    i.amount_paid,
                    i.amount_due,
                    _iso(i.period_start),
                    _iso(i.period_end),
                    _iso(i.issued_at),
                    _iso(i.due_at),
                    _iso(i.paid_at),
                ]
                for i in invoices
            ],
        ),
        "payments.csv": _csv(
            ["invoice", "attempt", "gateway", "status", "currency", "amount", "amount_refunded", "created_at"],
            [
                [
                    p.invoice.number or "",
                    p.number,
                    p.gateway,
                    p.status,
                    p.currency,
                    p.amount,
                    p.amount_refunded,
                    _iso(p.created_at),
                ]
                for p in payments
            ],
        ),
        "usage.csv": _csv(["meter", "day_utc", "value"], usage_rows),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def erasable_people(organization: Organization) -> tuple[QuerySet, QuerySet]:
    """(erased, kept): the organization's members who are nobody else's (no staff role, no other
    organization) are erased; the others are people of another customer or of the seller and
    keep their identity (their membership here is removed)."""
    members = User.objects.filter(memberships__organization=organization)
    elsewhere = Membership.objects.filter(user=OuterRef("pk")).exclude(organization=organization)
    kept = members.filter(Q(Exists(elsewhere)) | (Q(staff_role__isnull=False) & ~Q(staff_role="")))
    return members.exclude(pk__in=kept.values("pk")), kept


def gdpr_erase(*, actor: Actor, organization: Organization) -> dict:
    """Pseudonymize the organization's people: members' names and emails, their sign-in email
    addresses (and their access: deactivated, no password), the billing contact email, and the email on their past audit
    entries' actor. Invoices, credit notes and payments are kept as issued (the law keeps them
    for years; they name the organization, not its people). Updates go around django-auditlog,
    whose diff would write the erased email into the audit log; the erasure is one domain event
    with counts."""
    from allauth.account.models import EmailAddress

    with audit_actor(actor), transaction.atomic():
        erased, kept = erasable_people(organization)
        erased_ids = list(erased.values_list("pk", flat=True))
        kept_count = kept.count()
        for pk in erased_ids:
            User.objects.filter(pk=pk).update(
                email=f"erased-{pk}@erased.invalid", name="", is_active=False, password=make_password(None)
            )
            LogEntry.objects.filter(actor_id=pk).update(actor_email=f"erased-{pk}@erased.invalid")
        EmailAddress.objects.filter(user_id__in=erased_ids).delete()
        Membership.objects.filter(organization=organization).exclude(user_id__in=erased_ids).delete()
        had_contact = bool(organization.billing_email)
        Organization.objects.filter(pk=organization.pk).update(billing_email="", updated_at=timezone.now())
        organization.billing_email = ""
        audit_event(
            organization, event="gdpr.erased", people=len(erased_ids), kept=kept_count, billing_contact=had_contact
        )
    return {"erased": len(erased_ids), "kept": kept_count, "billing_contact": had_contact}
