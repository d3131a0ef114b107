"""Electronic signature in production (issue 16 §7): the signing CA is a licensed one whose files are given —
never the development CA made on first run, never generated — and every signature carries a trusted timestamp
(a TSA is required: PAdES B-T). Electronic Signature Law arts. 13 and 17."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contract.config import ConfigError
from contract.config import ContractSettings
from contract.signing.ca import CA_FILES
from contract.signing.ca import CertificateAuthorityError
from contract.signing.ca import SigningAuthority
from contract.signing.ca import require_licensed


def production(tmp_path: Path) -> dict[str, str]:
    from infra.service_tokens import load_or_create_signing_key
    from infra.service_tokens import public_jwks

    jwks = json.dumps(public_jwks(load_or_create_signing_key(tmp_path / "issuer.pem")))
    roots = tmp_path / "tsa-roots.pem"
    roots.write_bytes(_root("某某时间戳服务 Root").public_bytes(serialization.Encoding.PEM))
    return {"LEASELINE_ENV": "production", "LEASELINE_CONTRACT_DATABASE_URL": "postgresql://c@db.internal/contract",
            "LEASELINE_SERVICE_JWKS": jwks, "LEASELINE_SIGNING_DIR": "/etc/leaseline/ca",
            "LEASELINE_PII_KEY": "x" * 44, "LEASELINE_S3_SECRET_KEY": "s3-secret",
            "LEASELINE_TSA_URL": "https://tsa.example.cn/tsr", "LEASELINE_TSA_ROOTS": str(roots)}


def test_production_settings_with_a_time_stamping_authority_pass(tmp_path: Path) -> None:
    settings = ContractSettings.from_env(production(tmp_path))
    assert settings.env == "production" and settings.tsa_url == "https://tsa.example.cn/tsr"


@pytest.mark.parametrize("missing", ["LEASELINE_TSA_URL", "LEASELINE_TSA_ROOTS"])
def test_production_refuses_to_sign_without_a_time_stamping_authority(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in production(tmp_path).items() if k != missing}
    with pytest.raises(ConfigError, match="PAdES B-T"):
        ContractSettings.from_env(env)
    development = {k: v for k, v in env.items() if k != "LEASELINE_ENV"}
    assert ContractSettings.from_env(development).env == "development"  # a development service may sign B-B


def test_the_development_ca_and_a_ca_directory_to_be_made_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CertificateAuthorityError, match="missing"):
        require_licensed(tmp_path / "empty")
    SigningAuthority.load_or_create(tmp_path / "dev")
    with pytest.raises(CertificateAuthorityError, match="development CA"):
        require_licensed(tmp_path / "dev")


def test_a_ca_of_another_issuer_is_accepted(tmp_path: Path) -> None:
    """The files a licensed CA would hand over: here the development CA's layout with another root (the check is
    by the root's name; trust in the root itself is the operator's configuration)."""
    licensed = tmp_path / "licensed"
    shutil.copytree(_ca(tmp_path / "dev"), licensed)
    (licensed / "root-ca.crt").write_bytes(_root("某某 Root CA").public_bytes(serialization.Encoding.PEM))
    require_licensed(licensed)
    assert set(CA_FILES) <= {p.name for p in licensed.iterdir()}


def _ca(directory: Path) -> Path:
    SigningAuthority.load_or_create(directory)
    return directory


def _root(common_name: str) -> x509.Certificate:
    """A self-signed root of another issuer (a licensed CA's or a TSA's, for the test)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "某某数字认证股份有限公司"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .sign(key, hashes.SHA256()))
