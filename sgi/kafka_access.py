"""Access control for the local broker (`sgi kafka start --secure`): TLS certificates, SCRAM logins and ACLs.

Made locally at the first secured start and kept, owner-only, in the broker's data dir:
- `tls/ca.pem` (the certificate clients trust) and `tls/broker.pem` (the broker's key and certificate; the
  CA's key is thrown away once it has signed, so nothing else can be issued under it);
- `access.json`: a generated password for each principal.

Principals and what each may do (ACLs, with no access where no ACL matches):
- `admin`: super user, for operators and topic set-up;
- `partner`: WRITE and DESCRIBE on the inbound topic, nothing else (partners cannot read, even their own);
- `worker`: the Faust worker's topics (read, write, create), its changelog and internal topics (prefix
  `APP_ID-`) and its consumer group;
- `sink`: READ on the derived topics the sink consumes and its consumer group, nothing else.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import Any

from streams.topics import INBOUND, TOPICS

PRINCIPALS = ("admin", "partner", "worker", "sink")
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
# The broker's own identity on the mutual-TLS controller listener (it talks to itself there).
BROKER_CN = "sgi-broker"
CERT_DAYS = 365


class AccessError(RuntimeError):
    """The secured broker's certificates or logins could not be made or read."""


def write_private(path: Path, data: bytes) -> None:
    """Created owner-only from the start, so the secret is never readable by others, even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def make_certificates(tls_dir: Path, host: str) -> tuple[Path, Path]:
    """A fresh CA and a broker certificate for `host` (plus localhost and 127.0.0.1) signed by it.
    Returns (ca.pem, broker.pem); broker.pem holds the unencrypted PKCS#8 key then the certificate chain,
    the PEM keystore layout Kafka reads (ssl.keystore.type=PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    valid_from, valid_to = now - dt.timedelta(minutes=5), now + dt.timedelta(days=CERT_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sgi local Kafka CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid_from).not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        if host not in ("localhost", "127.0.0.1"):
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)])).issuer_name(ca_name)
        .public_key(broker_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(valid_from).not_valid_after(valid_to)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # Client auth too: the broker presents this certificate to its own controller listener.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, broker_file = tls_dir / "ca.pem", tls_dir / "broker.pem"
    write_private(ca_file, ca_cert.public_bytes(pem))
    write_private(broker_file, broker_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())
                   + broker_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return ca_file, broker_file


def load_or_make_passwords(path: Path) -> dict[str, str]:
    """The principals' passwords from `path`, generated (and written owner-only) when it does not exist."""
    if path.exists():
        try:
            passwords = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise AccessError(f"cannot read the broker's logins from {path}: {error}") from error
        if not isinstance(passwords, dict) or set(passwords) != set(PRINCIPALS):
            raise AccessError(f"{path} does not name the principals {', '.join(PRINCIPALS)}; delete the data dir")
        return passwords
    # Hex only: the storage tool's --add-scram syntax has no escaping for ',' ']' or '='.
    passwords = {name: secrets.token_hex(24) for name in PRINCIPALS}
    write_private(path, json.dumps(passwords, indent=2).encode())
    return passwords


def scram_arguments(passwords: dict[str, str]) -> list[str]:
    """`kafka-storage format` arguments adding every principal's SCRAM credential for both mechanisms."""
    return [argument for mechanism in MECHANISMS for name, password in sorted(passwords.items())
            for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")]


def broker_properties(host: str, port: int, controller_port: int, tls_dir: Path, admin_password: str) -> dict[str, str]:
    """server.properties entries of a secured single node: SASL_SSL for clients (and the broker itself),
    mutual TLS on the controller listener, and the standard authorizer denying whatever no ACL allows."""
    jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
            f'username="admin" password="{admin_password}";')
    return {
        "listeners": f"SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"SASL_SSL://{host}:{port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        **{f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config": jaas for m in MECHANISMS},
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls_dir / "broker.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls_dir / "ca.pem"),
        # Only a holder of a certificate from the local CA (the broker) may speak to the controller.
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:admin;User:CN={BROKER_CN}",
    }


def acl_rules(worker_app_id: str) -> list[tuple[str, str, str, str, str]]:
    """(principal, resource type, pattern type, resource name, operation) for every ACL the broker holds."""
    # Imported here: the sink module loads the ClickHouse client, seconds `sgi kafka status` need not wait.
    from sinks.kafka_sink import GROUP_ID as SINK_GROUP
    from sinks.kafka_sink import SINK_TOPICS

    rules: list[tuple[str, str, str, str, str]] = [
        ("partner", "TOPIC", "LITERAL", INBOUND, "WRITE"),
        ("partner", "TOPIC", "LITERAL", INBOUND, "DESCRIBE"),
    ]
    for spec in TOPICS:
        rules += [("worker", "TOPIC", "LITERAL", spec.name, op) for op in ("READ", "WRITE", "DESCRIBE", "CREATE")]
    # Faust names its changelog, repartition and leader topics after the app id.
    rules += [("worker", "TOPIC", "PREFIXED", f"{worker_app_id}-", "ALL"),
              ("worker", "GROUP", "LITERAL", worker_app_id, "READ"),
              ("worker", "GROUP", "LITERAL", worker_app_id, "DESCRIBE")]
    for topic in SINK_TOPICS:
        rules += [("sink", "TOPIC", "LITERAL", topic, "READ"), ("sink", "TOPIC", "LITERAL", topic, "DESCRIBE")]
    rules += [("sink", "GROUP", "LITERAL", SINK_GROUP, "READ")]
    return rules


def create_acls(admin: Any, worker_app_id: str) -> int:
    """Grant acl_rules through a kafka-python admin client logged in as a super user. Idempotent: the
    broker keeps one copy of an ACL granted twice. Returns how many rules were granted."""
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    acls = [
        ACL(principal=f"User:{principal}", host="*", operation=ACLOperation[operation],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(ResourceType[resource], name, ACLResourcePatternType[pattern]))
        for principal, resource, pattern, name, operation in acl_rules(worker_app_id)
    ]
    result = admin.create_acls(acls)
    if result["failed"]:
        raise AccessError(f"the broker refused {len(result['failed'])} of {len(acls)} ACLs: {result['failed'][0]!r}")
    return len(acls)
