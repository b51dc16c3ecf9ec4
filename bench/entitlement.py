"""Entitlement endpoint benchmark: p50/p95 of GET /api/v1/organizations/<id>/entitlement over
HTTP (uvicorn, as `make run` serves it), the answer the seller's product asks before serving a
customer; the target is p95 < 10 ms.

    TEST_DATA_DIR=.data/bench DJANGO_ENV=development \\
        .venv/bin/python -m config.embedded exec -- .venv/bin/python bench/entitlement.py

Seeding (tenant `entitlementbench`, reused): 2,000 organizations, a third in dunning (past due,
restricted, suspended: `DunningAccount` rows). Measured, one client thread, keep-alive:

1. cold: the first read of each organization (the cache entry is computed and stored);
2. warm: a second read of each (served from the cache);
3. after a transition: the cache entry of every organization deleted (what a transition does),
   then read again.

References in the same run: the stack's own floor over HTTP, `GET /api/v1/organizations/<id>`
(the same authentication, tenant and organization lookup, no dunning); the entitlement through
the whole Django stack in process (django.test.Client: middleware, authentication, view, no
server or socket); and `entitlement_get` alone (the cache read). Last line JSON.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from ingest import manage, percentile, start_web, stop  # noqa: E402

SLUG = "entitlementbench"
HOST = f"{SLUG}.localhost"
ORGANIZATIONS = int(os.environ.get("BENCH_ENTITLEMENT_ORGS", "2000"))


def log(message: str) -> None:
    print(message, flush=True)


def seed() -> tuple[str, list[tuple[int, str]]]:
    import django

    django.setup()
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from accounts.services.api_key import apikey_create
    from billing.models import Organization
    from dunning.models import DunningAccount
    from tenants.models import Tenant
    from tenants.services.tenant_provision import tenant_create

    tenant = Tenant.objects.filter(slug=SLUG).first() or tenant_create(name="Entitlement bench", slug=SLUG).tenant
    with schema_context(tenant.schema_name):
        if Organization.objects.count() < ORGANIZATIONS:
            Organization.objects.bulk_create(
                [
                    Organization(external_id=f"cust-{i:05d}", name=f"Customer {i}", currency="EUR")
                    for i in range(ORGANIZATIONS)
                ],
                ignore_conflicts=True,
            )
            now = timezone.now()
            states = [("past_due", []), ("past_due", ["plan_changes"]), ("suspended", ["plan_changes", "usage"])]
            DunningAccount.objects.bulk_create(
                [
                    DunningAccount(
                        organization=o, status=states[i % 3][0], blocked_features=states[i % 3][1], since=now,
                        reason="payment failed: invoice INV-000001",
                    )
                    for i, o in enumerate(Organization.objects.order_by("id")[: ORGANIZATIONS // 3])
                ],
                ignore_conflicts=True,
            )  # fmt: skip
        key = apikey_create(name=f"bench-{int(time.time())}", scopes=["read"], actor=None).secret
        organizations = list(Organization.objects.order_by("id").values_list("pk", "external_id")[:ORGANIZATIONS])
    return key, organizations


def cache_clear(organizations) -> None:
    from django.core.cache import cache
    from django_tenants.utils import schema_context

    from dunning.selectors import entitlement_key

    with schema_context(f"t_{SLUG}"):
        cache.delete_many([entitlement_key(pk) for pk, _ in organizations])


def baseline(organizations) -> list[float]:
    from django_tenants.utils import schema_context

    from dunning.selectors import entitlement_get

    timings = []
    with schema_context(f"t_{SLUG}"):
        for pk, _ in organizations:
            entitlement_get(organization_id=pk)
        for pk, _ in organizations:
            t = time.perf_counter()
            entitlement_get(organization_id=pk)
            timings.append((time.perf_counter() - t) * 1000)
    return timings


def in_process(key: str, organizations) -> list[float]:
    from django.test import Client

    client = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {key}")
    for _, external_id in organizations[:50]:
        client.get(f"/api/v1/organizations/{external_id}/entitlement")
    timings = []
    for _, external_id in organizations:
        t = time.perf_counter()
        answer = client.get(f"/api/v1/organizations/{external_id}/entitlement")
        timings.append((time.perf_counter() - t) * 1000)
        assert answer.status_code == 200
    return timings


def figures(timings: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(timings, 0.5), 2), "p95_ms": round(percentile(timings, 0.95), 2)}


def main() -> None:
    env = dict(os.environ)
    log("migrating …")
    manage("platform_migrate", "-v", "0", env=env)
    key, organizations = seed()
    cache_clear(organizations)
    port = 19500 + random.randrange(400)
    base = f"http://127.0.0.1:{port}"
    web = start_web(port, env)
    session = requests.Session()
    headers = {"Host": HOST, "Authorization": f"Bearer {key}"}
    try:
        for _ in range(50):  # warm the workers up (imports, connections)
            session.get(f"{base}/api/v1/organizations/{organizations[0][1]}/entitlement", headers=headers, timeout=10)
        cache_clear(organizations)
        passes: dict[str, list[float]] = {}
        for name in ("cold", "warm", "after_transition", "floor_organization_get"):
            if name == "after_transition":
                cache_clear(organizations)
            suffix = "" if name.startswith("floor") else "/entitlement"
            timings = []
            for _, external_id in organizations:
                t = time.perf_counter()
                answer = session.get(f"{base}/api/v1/organizations/{external_id}{suffix}", headers=headers, timeout=10)
                timings.append((time.perf_counter() - t) * 1000)
                assert answer.status_code == 200, answer.text
            passes[name] = timings
            log(f"{name:>22}: {len(timings)} reads, {figures(timings)}")
    finally:
        stop([web])
    passes["in_process_stack"] = in_process(key, organizations)
    base_line = baseline(organizations)
    log(f"{'in_process_stack':>22}: {figures(passes['in_process_stack'])}")
    log(f"{'entitlement_get':>22}: {figures(base_line)}")
    print(
        json.dumps(
            {
                "organizations": len(organizations),
                **{f"{name}_{k}": v for name, timings in passes.items() for k, v in figures(timings).items()},
                **{f"baseline_{k}": v for k, v in figures(base_line).items()},
            }
        )
    )


if __name__ == "__main__":
    main()
