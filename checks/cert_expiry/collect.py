"""I/O of cert_expiry: resolve, connect to every address, read served chains and PEM files.

Dates are read whatever the chain's validity: no verification is done here, and the
client offers every protocol version and cipher so that even weak servers show their
certificates.
"""

from __future__ import annotations

import glob
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography import x509

from checks.cert_expiry.facts import (
    AddressFailure,
    CertExpiryRaw,
    CertificateFacts,
    CertificateSource,
    certificate_facts,
)
from checks.cert_expiry.handshakes import shared_engine
from checks.cert_expiry.params import CertExpiryParams
from checks.cert_expiry.raw_hello import NoCertificate, read_chain
from checks.files import read_input_file
from checks.interface import (
    BadInput,
    CheckContext,
    CheckError,
    CheckMisconfigured,
    TargetUnreachable,
)
from checks.network import is_ip_literal, resolve
from checks.plaintext import no_tls
from monitor.model import Endpoint, Target

_MAX_PEM_BYTES = 4 * 1024 * 1024
_MAX_PARALLEL_ADDRESSES = 8


def collect(target: Target, params: CertExpiryParams, context: CheckContext) -> CertExpiryRaw:
    endpoint = target.endpoint
    if endpoint is None and not params.files:
        raise CheckMisconfigured("cert_expiry needs a target url or some files to read")
    served: tuple[CertificateSource, ...] = ()
    unreachable: tuple[AddressFailure, ...] = ()
    server_name = None
    plaintext = no_tls(target)
    if endpoint is not None and plaintext is None:
        server_name = params.server_name or endpoint.host
        served, unreachable = _collect_endpoint(endpoint, server_name, params, context)
    files = tuple(read_pem_files(params.files))
    return CertExpiryRaw(
        endpoint=str(endpoint) if endpoint else None,
        server_name=server_name,
        served=served,
        unreachable=unreachable,
        files=files,
        no_tls=plaintext,
    )


def _collect_endpoint(
    endpoint: Endpoint, server_name: str, params: CertExpiryParams, context: CheckContext
) -> tuple[tuple[CertificateSource, ...], tuple[AddressFailure, ...]]:
    addresses = params.addresses or resolve(endpoint, context)
    ceiling = params.connect_timeout.total_seconds()

    def fetch(address: str) -> CertificateSource | CheckError:
        try:
            chain = fetch_served_chain(address, endpoint.port, server_name, context, ceiling)
        except CheckError as error:
            return error
        return CertificateSource(address=address, certificates=chain)

    if len(addresses) == 1:
        outcomes = [fetch(addresses[0])]
    else:
        with ThreadPoolExecutor(min(len(addresses), _MAX_PARALLEL_ADDRESSES)) as pool:
            outcomes = list(pool.map(fetch, addresses))
    served = tuple(o for o in outcomes if isinstance(o, CertificateSource))
    errors = [(a, o) for a, o in zip(addresses, outcomes, strict=True) if isinstance(o, CheckError)]
    if not served:
        if len(errors) == 1:
            raise errors[0][1]
        details = "; ".join(str(error) for _, error in errors)
        kinds = {type(error) for _, error in errors}
        raise (kinds.pop() if len(kinds) == 1 else TargetUnreachable)(
            details, subject=str(endpoint)
        )
    failures = tuple(AddressFailure(address=a, reason=error.message) for a, error in errors)
    return served, failures


def fetch_served_chain(
    address: str, port: int, server_name: str, context: CheckContext, ceiling: float
) -> tuple[CertificateFacts, ...]:
    """The chain the server at address:port sends for `server_name`, leaf first."""
    where = str(Endpoint(address, port))
    if context.remaining() <= 0:
        raise TargetUnreachable("the run's deadline passed before connecting", subject=where)
    sni = None if is_ip_literal(server_name) else server_name
    try:
        chain = shared_engine().fetch_chain(address, port, sni, ceiling, context.deadline)
    except BadInput as refused:
        # the system OpenSSL refuses SSL 3.0, RC4, 3DES-only and DH < 1024 servers: read the
        # chain from the server's first flight instead, without finishing the handshake
        try:
            chain = read_chain(address, port, sni, context.io_timeout(ceiling))
        except (ConnectionRefusedError, ConnectionResetError) as error:
            # refused or reset, as in the first attempt (handshakes.py): the network's answer,
            # not what a server sent; e.g. a server stopped in the middle of the handshake
            raise TargetUnreachable(
                f"{refused.message}; a legacy ClientHello: {error.strerror or error}",
                subject=where,
            ) from None
        except (OSError, NoCertificate) as error:
            raise BadInput(
                f"{refused.message}; a legacy ClientHello: {error}", subject=where
            ) from None
    return tuple(certificate_facts(certificate, i) for i, certificate in enumerate(chain))


def read_pem_files(patterns: tuple[str, ...]) -> list[CertificateSource]:
    """Certificates from each file the patterns name; raises BadInput naming the bad file."""
    sources: list[CertificateSource] = []
    for pattern in patterns:
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not paths:
            raise BadInput("the pattern matches no file", subject=pattern)
        for path in paths:
            certificates = _load_pem(Path(path))
            facts = tuple(certificate_facts(c, i) for i, c in enumerate(certificates))
            sources.append(CertificateSource(address=f"file:{path}", certificates=facts))
    return sources


def _load_pem(path: Path) -> list[x509.Certificate]:
    data = read_input_file(path, _MAX_PEM_BYTES)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise BadInput(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file", subject=str(path)
        )
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise BadInput(f"not a valid PEM certificate: {error}", subject=str(path)) from None
