import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_check_deploy_is_clean_under_production_settings(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "OIDC_PRIVATE_KEY": pem.decode(),
        "ALLOWED_HOSTS": "billing.example.com,.billing.example.com",
        "TENANT_HOST_SUFFIX": "billing.example.com",
        "DATA_DIR": str(tmp_path),
        "FIELD_ENCRYPTION_KEYS": "NtkiDprsBsW4sy9PNCLxpvXwyqKedc7ijt-UKNH8CtY=",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
