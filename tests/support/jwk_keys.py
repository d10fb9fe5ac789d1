"""JWKs made from keys generated here with cryptography (never joserfc, the library under
test), and self-signed x5c certificates for them with chosen dates."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID


def b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_jwk(key: rsa.RSAPrivateKey, *, private: bool = False, **members: Any) -> dict[str, Any]:
    numbers = key.private_numbers()
    jwk = {"kty": "RSA", "n": b64(numbers.public_numbers.n), "e": b64(numbers.public_numbers.e)}
    if private:
        jwk |= {
            "d": b64(numbers.d),
            "p": b64(numbers.p),
            "q": b64(numbers.q),
            "dp": b64(numbers.dmp1),
            "dq": b64(numbers.dmq1),
            "qi": b64(numbers.iqmp),
        }
    return jwk | members


def ec_jwk(key: ec.EllipticCurvePrivateKey, crv: str, **members: Any) -> dict[str, Any]:
    public = key.public_key().public_numbers()
    return {"kty": "EC", "crv": crv, "x": b64(public.x), "y": b64(public.y)} | members


def ed_jwk(key: ed25519.Ed25519PrivateKey, **members: Any) -> dict[str, Any]:
    raw = key.public_key().public_bytes_raw()
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x} | members


def x5c(key: rsa.RSAPrivateKey, not_before: datetime, not_after: datetime) -> list[str]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    der = certificate.public_bytes(Encoding.DER)
    return [base64.b64encode(der).decode()]


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
