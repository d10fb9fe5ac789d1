"""Certificates for the weak-TLS test servers: a test CA and good and bad server certificates.

`TestPki(directory)` makes an RSA-2048 root and intermediate (SHA-256) and writes the root to
`pki.root_pem`, the file a client passes as its extra trust store. Each method writes one server
certificate and returns a `ServerCert` with the chain file (leaf first, then what the server
sends), the key file and the root to trust:

    pki = TestPki(tmp_path)
    good = pki.good()                  # 90 days, SAN localhost, chain leaf + intermediate
    bad = pki.sha1_intermediate()      # intermediate signed with SHA-1 (openssl CLI)
    revoked = pki.ocsp_stapled("revoked")  # revoked.ocsp_response: DER for ssl_stapling_file

cryptography (46) refuses SHA-1 signatures, so the SHA-1 intermediate and the OCSP responses
are made with the `openssl` command-line tool.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

DEFAULT_HOST = "localhost"


@dataclass(frozen=True, slots=True)
class Authority:
    """A CA certificate with its key (root or intermediate)."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    pem_path: Path
    key_path: Path

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class ServerCert:
    """Files for one server certificate.

    chain: PEM, leaf first, then the intermediates the server sends (nginx ssl_certificate,
        openssl s_server -cert, tlslite certChain).
    key: PEM (PKCS#8) private key of the leaf.
    root: PEM of the test root CA, the extra trust store a client passes (always
        `TestPki.root_pem`: it validates the good chains and not the self-signed or
        unknown-root ones).
    certificate: the leaf.
    ocsp_response: DER OCSP response for the leaf (nginx ssl_stapling_file), when made.
    """

    chain: Path
    key: Path
    root: Path
    certificate: x509.Certificate
    ocsp_response: Path | None = None

    @property
    def key_size(self) -> int:
        public_key = self.certificate.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        return public_key.key_size


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "apivigil test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> Path:
    path.write_bytes(_key_pem(key))
    path.chmod(0o600)
    return path


def _ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer_key: rsa.RSAPrivateKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )


def _rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    if bits >= 1024:
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    # cryptography refuses to generate keys below 1024 bits (it still loads them)
    completed = subprocess.run(
        ["openssl", "genrsa", str(bits)], capture_output=True, check=False, timeout=60
    )
    if completed.returncode != 0:
        raise RuntimeError(f"openssl genrsa {bits} failed: {completed.stderr.decode().strip()}")
    key = serialization.load_pem_private_key(completed.stdout, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _openssl(*args: str | Path) -> None:
    completed = subprocess.run(
        ["openssl", *(str(arg) for arg in args)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {completed.stderr.strip()}")


class TestPki:
    """A test CA (root + intermediate, RSA-2048, SHA-256) and the server certificates it makes.

    Every file goes into `directory`; `host` is the name good certificates are issued for.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, directory: Path, host: str = DEFAULT_HOST) -> None:
        self.directory = directory
        self.host = host
        directory.mkdir(parents=True, exist_ok=True)
        self._now = datetime.now(UTC)
        self.root = self._make_root("apivigil test root CA", "root")
        self.intermediate = self._make_intermediate(
            "apivigil test intermediate CA", "intermediate", self.root
        )

    @property
    def root_pem(self) -> Path:
        """The root CA to trust (sslyze custom_ca_file, openssl -CAfile, ssl cafile)."""
        return self.root.pem_path

    # -- authorities -------------------------------------------------------------------------

    def _make_root(self, common_name: str, stem: str) -> Authority:
        key = _rsa_key()
        name = _name(common_name)
        certificate = _ca_builder(
            name,
            name,
            key,
            key,
            self._now - timedelta(days=30),
            self._now + timedelta(days=3650),
        ).sign(key, hashes.SHA256())
        pem_path = self.directory / f"{stem}.pem"
        pem_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return Authority(
            certificate, key, pem_path, _write_key(self.directory / f"{stem}.key", key)
        )

    def _make_intermediate(self, common_name: str, stem: str, issuer: Authority) -> Authority:
        key = _rsa_key()
        certificate = _ca_builder(
            _name(common_name),
            issuer.certificate.subject,
            key,
            issuer.key,
            self._now - timedelta(days=30),
            self._now + timedelta(days=1825),
        ).sign(issuer.key, hashes.SHA256())
        pem_path = self.directory / f"{stem}.pem"
        pem_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return Authority(
            certificate, key, pem_path, _write_key(self.directory / f"{stem}.key", key)
        )

    def _make_sha1_intermediate(self) -> Authority:
        """An intermediate the root signs with SHA-1 (openssl x509 -req -sha1)."""
        stem = "intermediate-sha1"
        key = _rsa_key()
        key_path = _write_key(self.directory / f"{stem}.key", key)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(_name("apivigil test SHA-1 intermediate CA"))
            .sign(key, hashes.SHA256())
        )
        csr_path = self.directory / f"{stem}.csr"
        csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        extensions = self.directory / f"{stem}.ext"
        extensions.write_text(
            "[v3_ca]\n"
            "basicConstraints = critical, CA:TRUE\n"
            "keyUsage = critical, digitalSignature, keyCertSign, cRLSign\n"
            "subjectKeyIdentifier = hash\n"
            "authorityKeyIdentifier = keyid\n"
        )
        pem_path = self.directory / f"{stem}.pem"
        _openssl(
            "x509", "-req", "-in", csr_path, "-CA", self.root.pem_path,
            "-CAkey", self.root.key_path, "-sha1", "-days", "1825",
            "-set_serial", str(x509.random_serial_number()),
            "-extfile", extensions, "-extensions", "v3_ca", "-out", pem_path,
        )  # fmt: skip
        certificate = x509.load_pem_x509_certificate(pem_path.read_bytes())
        return Authority(certificate, key, pem_path, key_path)

    # -- leaves ------------------------------------------------------------------------------

    def leaf(
        self,
        stem: str,
        *,
        hosts: tuple[str, ...] | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key_bits: int = 2048,
        issuer: Authority | None = None,
        sent_chain: tuple[Authority, ...] | None = None,
        trust: Path | None = None,
        aia: bool = True,
    ) -> ServerCert:
        """Issue a leaf (RSA key of `key_bits`, SHA-256) and write `stem`.crt and `stem`.key.

        hosts: SAN names or IP addresses (default: `self.host`); the first is also the CN.
        issuer: the signing CA (default: the intermediate; `self_signed()` makes the other kind).
        sent_chain: the CA certificates written after the leaf (default: the issuer when it is
            an intermediate, nothing when the root signs).
        trust: the `root` path reported in the result (default: the test root).
        aia: name a (never served) caIssuers URL, as public CAs do, so clients can complete
            a chain sent without its intermediate.
        """
        issuer = issuer or self.intermediate
        if sent_chain is None:
            sent_chain = () if issuer is self.root else (issuer,)
        key = _rsa_key(key_bits)
        builder = (
            self._leaf_builder(key, hosts or (self.host,), not_before, not_after)
            .issuer_name(issuer.certificate.subject)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
        )
        if aia:
            url = x509.UniformResourceIdentifier("http://127.0.0.1:9/issuer.crt")
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, url)]
                ),
                critical=False,
            )
        certificate = builder.sign(issuer.key, hashes.SHA256())
        return self._write_leaf(stem, certificate, key, sent_chain, trust or self.root_pem)

    def _leaf_builder(
        self,
        key: rsa.RSAPrivateKey,
        hosts: tuple[str, ...],
        not_before: datetime | None,
        not_after: datetime | None,
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or self._now - timedelta(days=1))
            .not_valid_after(not_after or self._now + timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,  # static-RSA key exchange needs it
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(_san(hosts), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        )

    def _write_leaf(
        self,
        stem: str,
        certificate: x509.Certificate,
        key: rsa.RSAPrivateKey,
        sent_chain: tuple[Authority, ...],
        trust: Path,
    ) -> ServerCert:
        chain_path = self.directory / f"{stem}.crt"
        chain_path.write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
            + b"".join(authority.pem for authority in sent_chain)
        )
        key_path = _write_key(self.directory / f"{stem}.key", key)
        return ServerCert(chain=chain_path, key=key_path, root=trust, certificate=certificate)

    def good(self, host: str | None = None, stem: str = "good") -> ServerCert:
        """Valid for 90 days (from yesterday), SAN `host`, chain leaf + intermediate."""
        return self.leaf(stem, hosts=(host or self.host,))

    def expired(self) -> ServerCert:
        """Expired ten days ago (valid from 100 days ago)."""
        return self.leaf(
            "expired",
            not_before=self._now - timedelta(days=100),
            not_after=self._now - timedelta(days=10),
        )

    def not_yet_valid(self) -> ServerCert:
        """Valid only from ten days from now."""
        return self.leaf(
            "not-yet-valid",
            not_before=self._now + timedelta(days=10),
            not_after=self._now + timedelta(days=100),
        )

    def wrong_host(self, host: str = "wrong-host.invalid") -> ServerCert:
        """Trusted chain, but issued for another name (CN and SAN `host`)."""
        return self.leaf("wrong-host", hosts=(host,))

    def long_lifetime(self, days: int = 825) -> ServerCert:
        """Trusted, but valid for `days` days (browsers cap public certificates at 398)."""
        return self.leaf("long-lifetime", not_after=self._now - timedelta(days=1) + timedelta(days))

    def missing_intermediate(self, aia: bool = True) -> ServerCert:
        """Signed by the intermediate, but the server sends the leaf alone (`aia`: the leaf
        names where to fetch the intermediate)."""
        stem = "missing-intermediate" if aia else "missing-intermediate-no-aia"
        return self.leaf(stem, sent_chain=(), aia=aia)

    def rsa512(self) -> ServerCert:
        """A leaf with a 512-bit RSA key (servers need @SECLEVEL=0 to load it)."""
        return self.leaf("rsa512", key_bits=512)

    def rsa1024(self) -> ServerCert:
        """A leaf with a 1024-bit RSA key (servers need @SECLEVEL=0 to load it)."""
        return self.leaf("rsa1024", key_bits=1024)

    def self_signed(self, host: str | None = None, stem: str | None = None) -> ServerCert:
        """Self-signed leaf (CA:FALSE); `root` is the test root, which does not validate it."""
        key = _rsa_key()
        hosts = (host or self.host,)
        certificate = (
            self._leaf_builder(key, hosts, None, None)
            .issuer_name(_name(hosts[0]))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        stem = stem or ("self-signed" if host is None else f"self-signed-{host}")
        return self._write_leaf(stem, certificate, key, (), self.root_pem)

    def unknown_root(self) -> ServerCert:
        """Chain leaf + intermediate of another root that no client trusts.

        `root` is the main test root (which does not validate it), so a client trusting
        `pki.root_pem` rejects it as untrusted.
        """
        other_root = self._make_root("apivigil unknown root CA", "unknown-root")
        other_intermediate = self._make_intermediate(
            "apivigil unknown intermediate CA", "unknown-intermediate", other_root
        )
        return self.leaf("unknown-root", issuer=other_intermediate)

    def sha1_intermediate(self) -> ServerCert:
        """Leaf (SHA-256) under an intermediate that the trusted root signed with SHA-1."""
        intermediate = self._make_sha1_intermediate()
        return self.leaf("sha1-intermediate", issuer=intermediate)

    def ocsp_stapled(self, status: Literal["revoked", "good"] = "revoked") -> ServerCert:
        """A good leaf plus an OCSP response for it, made offline with `openssl ocsp`.

        The intermediate (the leaf's issuer) signs the response itself; it is valid from now
        for 7 days. The file is DER, for nginx `ssl_stapling_file`.
        """
        stem = f"ocsp-{status}"
        cert = self.leaf(stem)
        leaf_pem = self.directory / f"{stem}-leaf.pem"
        leaf_pem.write_bytes(cert.certificate.public_bytes(serialization.Encoding.PEM))
        expiry = cert.certificate.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
        serial = f"{cert.certificate.serial_number:X}"
        serial = serial if len(serial) % 2 == 0 else f"0{serial}"
        subject = "/O=apivigil test/CN=" + self.host
        if status == "revoked":
            revoked_at = (self._now - timedelta(days=1)).strftime("%y%m%d%H%M%SZ")
            line = f"R\t{expiry}\t{revoked_at},keyCompromise\t{serial}\tunknown\t{subject}\n"
        else:
            line = f"V\t{expiry}\t\t{serial}\tunknown\t{subject}\n"
        index = self.directory / f"{stem}-index.txt"
        index.write_text(line)
        response = self.directory / f"{stem}.der"
        _openssl(
            "ocsp", "-index", index, "-CA", self.intermediate.pem_path,
            "-rsigner", self.intermediate.pem_path, "-rkey", self.intermediate.key_path,
            "-issuer", self.intermediate.pem_path, "-cert", leaf_pem,
            "-ndays", "7", "-respout", response,
        )  # fmt: skip
        return ServerCert(
            chain=cert.chain,
            key=cert.key,
            root=cert.root,
            certificate=cert.certificate,
            ocsp_response=response,
        )


def load_ocsp_status(response: Path) -> str:
    """The certificate status inside a DER OCSP response file ("REVOKED", "GOOD", ...)."""
    parsed = ocsp.load_der_ocsp_response(response.read_bytes())
    return parsed.certificate_status.name
