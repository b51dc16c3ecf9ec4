"""PCI DSS SAQ-A sweep (issue 11, "Tokenization"): card details are typed only into the gateway's
own elements, so a card number sent to our servers anyway must leave no trace. A test card number
(plain, with spaces, with dashes) and a CVC go to every API operation of the schema (in the body
beside a valid one, and in the query) and to every page of the tenant's URLconf (the portal, the
staff pages, the Django admin, allauth), both as a POST of the page's own forms with card fields
added and as a bare POST, signed in as staff and as a customer. Then the number, in every form,
is searched for in every text and JSON column of every table of the public and the tenant schema
(found through information_schema: a table added later is searched without a change here), in
what was logged (caplog, and whatever the log files under the data directory gained), in the mail
sent (after running the outbox, so queued mail is sent) and in the outbox payloads (a table: part
of the database search). Log records are searched as the platform's formatter writes them (message,
extras, traceback) before its card-number mask, so a number is found at the code that logged it.
The detector's own test stores the number on purpose and sees it found. No page may answer 500 to
what was posted (the admin forms the sweep found doing so now refuse it on the form).

Free-text fields (an organization's name, a note) are not filled with the number: a person may
type anything there, and a number typed as a name is not card data the platform collected.
`pytest -s` prints the counts."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from billing.models import MemberRole, Membership, Organization
from core.models import OutboxMessage, OutboxStatus
from core.services.outbox import outbox_process
from invoicing.models import Invoice
from tests.config.test_api_fuzz import BASE_BODIES, operations
from tests.config.test_api_fuzz import world as api_world  # noqa: F401  (the API's resources)
from tests.factories import PASSWORD, OrganizationFactory, UserFactory, totp_enable
from tests.helpers import bearer, staff_login

CARD = "4242424242424242"
CARD_FORMS = (CARD, "4242 4242 4242 4242", "4242-4242-4242-4242")
CVC = "737"
# Every form above, also URL-encoded (a logged query string): digits in groups of four, joined by
# nothing, a space, a dash, `+` or `%20`.
SEPARATOR = r"(?:[ -]|%20|\+)?"
PATTERN = SEPARATOR.join(["4242"] * 4)
FOUND = re.compile(PATTERN)
# The names a client or a careless form would give card fields.
CARD_FIELDS = ("card_number", "cardnumber", "cc-number", "card[number]", "pan", "number_card")
CVC_FIELDS = ("cvc", "cvv", "card[cvc]", "cc-csc")
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")
# Signing out (a page, or a form's action) would end the sweep's own session; turning off the
# second factor, or the admin's delete confirmations (deleting the authenticator, the staff user),
# would lock the staff out of the pages after it. None of them takes typed input.
SKIPPED = ("logout", "deactivate", "delete")  # in a route or a form's action


def card_fields(number: str) -> dict[str, str]:
    return {**dict.fromkeys(CARD_FIELDS, number), **dict.fromkeys(CVC_FIELDS, CVC), "exp_month": "12"}


def card_fields_mixed() -> dict[str, str]:
    """Every form of the number in one request, each in two of the card fields: a bare POST's
    fields are unknown to the page, so one request per page does what three did (a third of the
    sweep's time)."""
    numbers = {name: CARD_FORMS[i % len(CARD_FORMS)] for i, name in enumerate(CARD_FIELDS)}
    return {**numbers, **dict.fromkeys(CVC_FIELDS, CVC), "exp_month": "12"}


# ---------------------------------------------------------------------------------------------
# The detector


@dataclass
class Sweep:
    log_offsets: dict[Path, int]
    columns: int = 0
    tables: set[str] = field(default_factory=set)
    posted: Counter = field(default_factory=Counter)  # surface → requests
    answers: Counter = field(default_factory=Counter)  # status → requests
    errors: Counter = field(default_factory=Counter)  # "POST <path> (who)" answered 500 → requests


def log_files() -> dict[Path, int]:
    """Log files under the data directory with their sizes (localstripe's own is the gateway's
    side: the numbers a test types into the fake Stripe.js belong there)."""
    root = Path(settings.DATA_DIR)
    return {
        path: path.stat().st_size
        for path in root.rglob("*.log")
        if path.is_file() and "localstripe" not in path.relative_to(root).parts
    }


def database_findings(sweep: Sweep) -> list[str]:
    schemas = ["public", connection.schema_name]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " JOIN information_schema.tables USING (table_schema, table_name)"
            " WHERE table_schema = ANY(%s) AND data_type = ANY(%s) AND table_type = 'BASE TABLE'"
            " ORDER BY 1, 2, 3",
            [schemas, list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        found = []
        for schema, table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}"::text ~ %s',
                [PATTERN],
            )
            (count,) = cursor.fetchone()
            if count:
                found.append(f"database {schema}.{table}.{column}: {count} rows")
    sweep.columns = len(columns)
    sweep.tables = {f"{schema}.{table}" for schema, table, _ in columns}
    return found


def findings(sweep: Sweep, caplog) -> list[str]:
    """Every place the number was found (empty: none)."""
    found = database_findings(sweep)
    found += [f"log record {r.name}: {r.getMessage()[:200]}" for r in caplog.records if FOUND.search(_record(r))]
    for path, offset in sweep.log_offsets.items():
        with path.open("rb") as handle:
            handle.seek(offset)
            if FOUND.search(handle.read().decode("utf-8", "replace")):
                found.append(f"log file {path}")
    for path in set(log_files()) - set(sweep.log_offsets):  # files created during the sweep
        if FOUND.search(path.read_text("utf-8", "replace")):
            found.append(f"log file {path}")
    for message in mail.outbox:
        parts = [message.subject, message.body, *(str(a[0]) + str(a[1]) for a in message.alternatives)]
        if any(FOUND.search(part) for part in parts):
            found.append(f"mail to {message.to}: {message.subject}")
    return found


def _record(record: logging.LogRecord) -> str:
    """The record as the platform writes it (settings.LOGGING's formatter: message, extras,
    traceback), without the card-number mask: the mask is defence in depth, and the sweep looks
    for the code that logs a number, which the mask would hide."""
    (console,) = [h for h in logging.getLogger().handlers if h.name == "console"]
    return console.formatter.format_unmasked(record)


def outbox_run_all() -> None:
    """Run what the requests queued (mail among it), as the worker would."""
    pending = OutboxMessage.objects.filter(status=OutboxStatus.PENDING).values_list("pk", flat=True)
    outbox_process(ids=list(pending))


# ---------------------------------------------------------------------------------------------
# The surfaces


class Forms(HTMLParser):
    """The POST forms of a page: action and their fields' values as the page fills them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._current: dict[str, str] | None = None
        self._select = ""

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "option" and self._current is not None and self._select:
            # The selected option, else the first (what a browser submits).
            if "selected" in a or self._select not in self._current:
                self._current[self._select] = a.get("value", "")
            return
        if tag == "select":
            self._select = a.get("name", "")
            return
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._current = {}
            self.forms.append((a.get("action", ""), self._current))
        elif tag == "form":
            self._current = None
        elif self._current is not None and tag in ("input", "textarea") and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self._current.setdefault(a["name"], a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = ""
        if tag == "form":
            self._current = None


def tenant_routes() -> list[tuple[str, str, object]]:
    """(route, name, view) of every page of the tenant's URLconf, outside the API (swept from
    the schema), with `<param>` placeholders."""

    def walk(patterns, prefix=""):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                yield route, p.name or "", p.callback

    return [r for r in walk(get_resolver().url_patterns) if not r[0].startswith("api/")]


def fill(route: str, view, ids: dict[str, str]) -> str | None:
    """The route with its parameters named from real objects, or None when one cannot be."""
    if "^" in route or "(?P" in route:
        return None  # a regex route (static, media): no form
    model_admin = getattr(view, "model_admin", None)
    values = dict(ids)
    if model_admin is not None:
        # The newest row: for users, the bystander made last (editing the sweep's own staff user
        # with a form's defaults would sign it out).
        first = model_admin.model._default_manager.order_by("-pk").first()
        if first is not None:
            values["object_id"] = str(first.pk)
    out = []
    for part in re.split(r"(<[^>]+>)", route):
        if part.startswith("<"):
            name = part[1:-1].split(":")[-1]
            if name not in values:
                return None
            part = values[name]
        out.append(part)
    return "/" + "".join(out)


def post_everywhere(sweep: Sweep, clients: dict[str, Client], ids: dict[str, str]) -> None:
    for route, name, view in tenant_routes():
        if any(word in route for word in SKIPPED):
            continue
        url = fill(route, view, ids)
        if url is None:
            sweep.posted["routes skipped (unfillable parameter)"] += 1
            continue
        for who, client in clients.items():
            response = client.post(url, card_fields_mixed())
            sweep.posted[f"page bare POST ({who})"] += 1
            sweep.answers[response.status_code] += 1
            if response.status_code >= 500:
                sweep.errors[f"bare POST {url} ({who})"] += 1
            page = client.get(url)
            if page.status_code != 200 or "html" not in page.get("Content-Type", ""):
                continue
            parser = Forms()
            parser.feed(page.content.decode("utf-8", "replace"))
            for action, values in parser.forms:
                target = urlsplit(action).path or url
                if any(word in target for word in SKIPPED):
                    continue
                for number in CARD_FORMS:
                    response = client.post(target, {**values, **card_fields(number)})
                    sweep.posted[f"page form POST ({who})"] += 1
                    sweep.answers[response.status_code] += 1
                    if response.status_code >= 500:
                        sweep.errors[f"form POST {target} ({who})"] += 1
            # Signed in to the end, or the pages after this one would only have seen the login.
            home = client.get("/staff/" if who == "staff" else "/organizations/acme/")
            assert home.status_code == 200, f"{route} ({name}) signed the {who} out: {home.get('Location')}"


def post_api(sweep: Sweep, world) -> None:
    for label, operation in operations().items():
        method, template = label.split()
        path = template.format(**world.path_parameters(template))
        base = BASE_BODIES[label](world) if label in BASE_BODIES else {}
        for number in CARD_FORMS:
            query = urlencode({"card_number": number, "cvc": CVC})
            if method == "GET":
                response = world.client.get(f"{path}?{query}", **bearer(world.key))
            else:
                body = {**base, **card_fields(number)} if isinstance(base, dict) else base
                response = world.client.generic(
                    method, f"{path}?{query}", json.dumps(body), content_type="application/json", **bearer(world.key)
                )
            sweep.posted["API"] += 1
            sweep.answers[response.status_code] += 1
            assert response.status_code < 500, f"{label}: {response.status_code} {response.content[:300]!r}"


# ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_card_number_sent_everywhere_is_stored_logged_and_mailed_nowhere(
    api_world,  # noqa: F811
    connected,
    tenant_a,
    caplog,
):
    caplog.set_level(logging.DEBUG)
    sweep = Sweep(log_offsets=log_files())
    host = tenant_a.get_primary_domain().domain
    # A page's 500 is recorded (sweep.errors) and asserted at the end rather than raised, so that
    # one run lists every finding.
    clients = {who: Client(HTTP_HOST=host, raise_request_exception=False) for who in ("staff", "customer")}
    owner = UserFactory(staff_role="owner")
    secret = totp_enable(owner)
    customer = UserFactory(email="payer@acme.example")
    acme = Organization.objects.get(external_id="acme")
    Membership.objects.create(user=customer, organization=acme, role=MemberRole.OWNER)
    UserFactory(email="bystander@acme.example")

    staff_login(clients["staff"], email=owner.email, totp_secret=secret)
    response = clients["customer"].post("/accounts/login/", {"login": customer.email, "password": PASSWORD})
    assert response.status_code == 302
    invoice = Invoice.objects.exclude(number=None).order_by("pk").first()
    ids = {"external_id": "acme", "invoice_id": str(invoice.pk), "pk": str(invoice.pk), "id": str(invoice.pk)}

    post_api(sweep, api_world)
    post_everywhere(sweep, clients, ids)
    outbox_run_all()

    assert clients["staff"].get("/staff/").status_code == 200  # signed in to the end
    assert clients["customer"].get("/organizations/acme/").status_code == 200
    found = findings(sweep, caplog)
    print(
        f"\nPCI sweep: {sum(v for k, v in sweep.posted.items() if 'skipped' not in k)} requests "
        f"{dict(sweep.posted)}; answers {dict(sorted(sweep.answers.items()))}; searched {sweep.columns} "
        f"columns of {len(sweep.tables)} tables, {len(sweep.log_offsets)} log files, "
        f"{len(caplog.records)} log records, {len(mail.outbox)} mails"
    )
    assert found == []
    assert dict(sweep.errors) == {}
    assert sweep.posted["API"] == 3 * len(operations())


@pytest.mark.django_db
def test_the_detector_finds_a_number_stored_logged_or_mailed(in_a, caplog, tmp_path, settings):
    """The sweep can fail: the number put in a column, a log record, a log file and a mail is
    reported in each place."""
    settings.DATA_DIR = tmp_path
    (tmp_path / "web.log").write_text("started\n")
    sweep = Sweep(log_offsets=log_files())
    assert findings(sweep, caplog) == []
    assert sweep.columns > 0

    OrganizationFactory(external_id="leak", name="Leak", metadata={"note": "card 4242-4242-4242-4242"})
    logging.getLogger("payments").warning("charging %s", "4242 4242 4242 4242")
    logging.getLogger("payments").warning("charge failed", extra={"card": {"number": CARD}})
    with (tmp_path / "web.log").open("a") as log:
        log.write("GET /?card=4242%204242%204242%204242\n")
    mail.send_mail("Receipt", f"card {CARD}", "from@example.com", ["to@example.com"])

    found = findings(sweep, caplog)
    assert found == [
        f"database {connection.schema_name}.auditlog_logentry.changes: 1 rows",  # the audit trail copied it
        f"database {connection.schema_name}.billing_organization.metadata: 1 rows",
        "log record payments: charging 4242 4242 4242 4242",
        "log record payments: charge failed",  # in an extra, which the formatter writes
        f"log file {tmp_path / 'web.log'}",
        "mail to ['to@example.com']: Receipt",
    ]
    assert Organization.objects.filter(external_id="leak").exists()
