"""The stage's certificates: its own certificate authority, and one certificate per node named after it
(``motionctl stage certs``).

Mutual TLS names each node by its certificate's common name, and access control grants by that name
(:func:`motionctl.stage.zconfig.access_control`), so a node's certificate *is* its identity on the stage.
The CA's key signs every node: keep it off the stage once the certificates are made (whoever holds it can
make an operator).  Keys are written readable by their owner only.

Elliptic-curve P-256 keys, PKCS#8 PEM (what Zenoh's TLS reads); each node's certificate serves both as a
server (a daemon listens) and as a client (everyone connects), and carries its name as a DNS name too
(TLS libraries check names in the subject alternative names, not the common name).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from motionctl.errors import InputError
from motionctl.stage.netfile import StageNet

CA_DAYS = 3650
NODE_DAYS = 365


def _private_key():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.unlink(missing_ok=True)          # O_CREAT's mode applies to a new file only
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temp, path)


def _write_cert(cert, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(temp, path)


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)


def make_ca(name: str, days: int = CA_DAYS):
    """A self-signed certificate authority: (key, certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start, end = _validity(days)
    usage = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue(name: str, ca_key, ca_cert, days: int = NODE_DAYS):
    """A node's certificate, signed by the stage's CA: (key, certificate)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _private_key()
    start, end = _validity(days)
    names = x509.SubjectAlternativeName([x509.DNSName(name), x509.DNSName("localhost"),
                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(names, critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def save(key, cert, cert_path: Path, key_path: Path) -> None:
    _write_key(key, key_path)
    _write_cert(cert, cert_path)


def stage_certs(net: StageNet, *, renew: bool = False) -> list[str]:
    """Make what ``[security]`` names: the CA (kept if it exists) and every node's certificate (kept if it
    exists, unless ``renew``).  Returns what was written, in words."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    security = net.security
    if security is None:
        raise InputError(f"{net.file}: no [security] table: nothing says where the certificates go")
    ca_key_path = security.ca.with_suffix(".key")
    for node in net.nodes:
        if security.cert(node.name).resolve() == security.ca.resolve():
            raise InputError(f'{net.file}: node "{node.name}" would share the CA\'s files ({security.ca}): rename it '
                             "or put the CA elsewhere")
    written = []
    if security.ca.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(security.ca.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    elif security.ca.exists():
        raise InputError(f"{security.ca} exists without its key {ca_key_path}: cannot sign with it (move it away "
                         "to make a new CA, then every node needs a new certificate)")
    else:
        ca_key, ca_cert = make_ca(f"motionctl stage {net.stage} CA")
        save(ca_key, ca_cert, security.ca, ca_key_path)
        written.append(f"CA {security.ca} (its key {ca_key_path}: keep it off the stage)")
    for node in net.nodes:
        if not renew and security.cert(node.name).exists() and security.key(node.name).exists():
            continue
        save(*issue(node.name, ca_key, ca_cert), security.cert(node.name), security.key(node.name))
        written.append(f"{node.name}: {security.cert(node.name)}, {security.key(node.name)}")
    return written
