"""A local RFC 3161 time-stamping authority over HTTP, for the tests and the bench.

``TsaServer()`` is a context manager: a ``ThreadingHTTPServer`` on 127.0.0.1 and a free port answering
``POST`` ``application/timestamp-query`` with ``application/timestamp-reply`` (RFC 3161 §3.4), tokens made by
pyHanko's ``DummyTimeStamper`` (``pyhanko.sign.timestamps.dummy_client``: it signs whatever it is asked, with
the certificate it is given). Its certificates are made here: a test TSA root (RSA 2048) and a TSA
certificate (RSA 2048; ``DummyTimeStamper`` signs with RSA only) with the **critical** ``timeStamping`` EKU
that RFC 3161 §2.3 requires and pyHanko's validator checks::

    with TsaServer() as tsa:
        stamper = HTTPTimeStamper(tsa.url)               # pyhanko.sign.timestamps
        ...
        verify_pdf(pdf, roots, tsa_roots=[tsa.root_certificate])

``clock`` (a callable returning an aware datetime) lets a test make tokens for another time; ``port`` fixes the
port, so that its URL is known (and refused) before it starts, as a TSA that is down and comes back. Reuse one
``HTTPTimeStamper`` per TSA: pyHanko caches a "dummy" token per instance to size the signature container,
so a fresh instance per signature costs a second request.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

from asn1crypto import cms
from asn1crypto import core
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID
from pyhanko.sign import general
from pyhanko.sign.general import simple_cms_attribute
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_QUERY_BYTES = 64 * 1024


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Leaseline Test TSA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tsa_certificates() -> tuple[x509.Certificate, x509.Certificate, rsa.RSAPrivateKey]:
    """(root certificate, TSA certificate, TSA key): a fresh test TSA hierarchy."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _name("Leaseline Test TSA Root")
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(_name("Leaseline Test TSA")).issuer_name(root_name)
            .public_key(tsa_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(tsa_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    return root, cert, tsa_key


class _CachedKeyTimeStamper(DummyTimeStamper):
    """``DummyTimeStamper`` signing with an already loaded key: the stock one reloads the RSA key from DER
    for every token, and ``cryptography`` checks the key on load (~90 ms a token)."""

    def __init__(self, *args: Any, key: rsa.RSAPrivateKey, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded_key = key

    def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str,
                       when: dt.datetime) -> tuple[bytes, cms.CMSAttributes]:
        # same attributes as DummyTimeStamper._sign_tst_info (pyhanko/sign/timestamps/dummy_client.py)
        md = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        md.update(tst_info_data)
        signed_attrs = cms.CMSAttributes([
            simple_cms_attribute("content_type", "tst_info"),
            simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(when)})),
            simple_cms_attribute("signing_certificate", general.as_signing_certificate(self.tsa_cert)),
            simple_cms_attribute("message_digest", md.finalize()),
        ])
        signature = self._loaded_key.sign(signed_attrs.dump(), PKCS1v15(),
                                          get_pyca_cryptography_hash(md_algorithm.upper()))
        return signature, signed_attrs


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        if self.headers.get("Content-Type", "").split(";")[0].strip() != QUERY_TYPE:
            self._reply(415, b"expected " + QUERY_TYPE.encode(), "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_QUERY_BYTES:
            self._reply(400, b"bad Content-Length", "text/plain")
            return
        try:
            query = tsp.TimeStampReq.load(self.rfile.read(length))
            query.native  # noqa: B018 (parse it all now: asn1crypto parses lazily)
            reply = self.server.tsa.reply(query)
        except ValueError as exc:
            self._reply(400, f"bad time-stamp query: {exc}".encode(), "text/plain")
            return
        self._reply(200, reply.dump(), REPLY_TYPE)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        pass  # keep the test output quiet


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tsa: TsaServer, port: int) -> None:
        self.tsa = tsa
        super().__init__(("127.0.0.1", port), _Handler)


class TsaServer:
    """A time-stamping authority on ``http://127.0.0.1:<free port>/``; use it as a context manager."""

    def __init__(self, clock: Callable[[], dt.datetime] | None = None, *, port: int = 0) -> None:
        self.root_certificate, self.certificate, key = make_tsa_certificates()
        self.clock = clock
        self.requests = 0
        self._lock = threading.Lock()
        self._rsa_key = key
        self._key_info = asn1_keys.PrivateKeyInfo.load(key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self._cert_asn1 = _asn1(self.certificate)
        self._root_asn1 = _asn1(self.root_certificate)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.url = f"http://127.0.0.1:{port}/tsa" if port else ""

    def reply(self, query: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """The RFC 3161 response to ``query`` (also usable without HTTP)."""
        with self._lock:
            self.requests += 1
        fixed = self.clock() if self.clock is not None else None
        stamper = _CachedKeyTimeStamper(tsa_cert=self._cert_asn1, tsa_key=self._key_info, key=self._rsa_key,
                                        certs_to_embed=[self._root_asn1], fixed_dt=fixed)
        return stamper.request_tsa_response(query)

    def __enter__(self) -> TsaServer:
        self._server = _Server(self, self.port)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}/tsa"
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-tsa", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
