import pytest
from django.core.management import call_command

from accounts.models import APIKey
from accounts.services.api_key import APIKeyError, apikey_create, apikey_revoke
from billing.models import Organization
from tests.helpers import bearer


@pytest.mark.django_db
def test_key_is_shown_once_and_stored_hashed(in_a):
    created = apikey_create(name="prod ingest", scopes=["ingest", "read"], actor=None)
    key = APIKey.objects.get(pk=created.api_key.pk)

    assert created.secret.startswith("bk_") and created.secret.startswith(key.prefix + "_")
    assert len(created.secret) == len("bk_") + 8 + 1 + 43
    stored = [str(getattr(key, f.attname)) for f in APIKey._meta.concrete_fields]
    assert not any(created.secret in value for value in stored)
    assert not any(created.secret.split("_", 2)[2] in value for value in stored)
    assert key.scopes == ["ingest", "read"]
    assert key.last_used_at is None


@pytest.mark.django_db
def test_invalid_scopes_are_refused(in_a):
    for scopes in ([], ["admin"], ["read", "root"]):
        with pytest.raises(APIKeyError):
            apikey_create(name="x", scopes=scopes, actor=None)
    assert APIKey.objects.count() == 0


@pytest.mark.django_db
def test_revoked_key_is_refused_and_use_is_recorded(in_a, client_a):
    created = apikey_create(name="reader", scopes=["read"], actor=None)
    ok = client_a.get("/api/v1/organizations", **bearer(created.secret))
    assert ok.status_code == 200
    created.api_key.refresh_from_db()
    assert created.api_key.last_used_at is not None

    apikey_revoke(api_key=created.api_key, actor=None)
    refused = client_a.get("/api/v1/organizations", **bearer(created.secret))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert refused["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.django_db
def test_unknown_and_malformed_keys_are_refused(client_a):
    for token in ("bk_00000000_nope", "bk_", "garbage"):
        response = client_a.get("/api/v1/organizations", **bearer(token))
        assert response.status_code == 401, token
    assert client_a.get("/api/v1/organizations").status_code == 401


@pytest.mark.django_db
def test_scopes_are_enforced_and_refusal_writes_nothing(in_a, client_a):
    ingest_only = apikey_create(name="ingest", scopes=["ingest"], actor=None).secret
    read_only = apikey_create(name="read", scopes=["read"], actor=None).secret
    body = {"external_id": "acme", "name": "Acme", "currency": "USD"}

    for key in (ingest_only, read_only):
        response = client_a.post("/api/v1/organizations", body, content_type="application/json", **bearer(key))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
        assert "'write' scope" in response.json()["error"]["message"]
    assert client_a.get("/api/v1/organizations", **bearer(ingest_only)).status_code == 403
    assert Organization.objects.count() == 0


@pytest.mark.django_db
def test_apikey_create_command_prints_a_working_key(tenant_a, client_a, capsys):
    call_command("apikey_create", tenant=tenant_a.slug, name="cli", scopes="read,write")
    secret = capsys.readouterr().out.strip()
    response = client_a.get("/api/v1/organizations", **bearer(secret))
    assert response.status_code == 200
