"""Kafka login settings, the options each client library gets from them, and the local broker's access
rules, without a broker (tests/integration/test_kafka_access.py runs them against a real one)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from settings import KafkaSettings
from sgi import kafka_access
from sgi.kafka_local import KafkaLaunchError, LocalKafka
from sinks.kafka_sink import SINK_TOPICS
from streams.kafka_security import aiokafka_options, faust_credentials, kafka_python_options
from streams.topics import INBOUND, TOPICS


def _secured(cafile: Path | None = None) -> KafkaSettings:
    return KafkaSettings(bootstrap="broker:9093", security_protocol="SASL_SSL", username="sink",
                         password=SecretStr("s3cret"), ssl_cafile=cafile)


def test_plaintext_is_the_default_and_adds_no_options(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SECURITY_PROTOCOL", "USERNAME", "PASSWORD", "SSL_CAFILE", "SASL_MECHANISM"):
        monkeypatch.delenv(f"SGI_KAFKA_{name}", raising=False)
    plain = KafkaSettings()
    assert plain.security_protocol == "PLAINTEXT"
    assert kafka_python_options(plain) == {} and aiokafka_options(plain) == {}
    assert faust_credentials(plain) is None


def test_settings_read_the_login_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SGI_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SGI_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("SGI_KAFKA_USERNAME", "worker")
    monkeypatch.setenv("SGI_KAFKA_PASSWORD", "pw")
    monkeypatch.setenv("SGI_KAFKA_SSL_CAFILE", str(tmp_path / "ca.pem"))
    settings = KafkaSettings()
    assert (settings.security_protocol, settings.sasl_mechanism, settings.username) == ("SASL_SSL", "SCRAM-SHA-256",
                                                                                        "worker")
    assert settings.password.get_secret_value() == "pw" and "pw" not in repr(settings)
    assert settings.ssl_cafile == tmp_path / "ca.pem"


def test_sasl_without_a_login_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="SGI_KAFKA_USERNAME and SGI_KAFKA_PASSWORD"):
        KafkaSettings(security_protocol="SASL_SSL", username="sink")
    with pytest.raises(ValidationError):
        KafkaSettings(security_protocol="SSL")  # not a protocol the pipeline speaks


def test_each_library_gets_the_same_login() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = _secured()
    options = kafka_python_options(settings)
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("sink", "s3cret")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # What Faust hands aiokafka from our credentials is what aiokafka_options gives directly.
    from_faust = dict(credentials_to_aiokafka_auth(faust_credentials(settings)))
    direct = aiokafka_options(settings)
    assert from_faust.keys() == direct.keys()
    assert {k: v for k, v in from_faust.items() if k != "ssl_context"} == \
           {k: v for k, v in direct.items() if k != "ssl_context"}
    assert from_faust["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_the_worker_app_passes_the_login_to_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    from settings import WorkerSettings
    from streams.app import build_app

    app, _ = build_app(_secured(), WorkerSettings(app_id="sgi-test-credentials"))
    credentials = app.conf.broker_credentials
    assert credentials.username == "sink" and credentials.password == "s3cret"
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"


def test_partner_may_only_write_inbound_and_sink_only_read_what_it_consumes() -> None:
    rules = kafka_access.acl_rules("sgi")
    partner = {(resource, name, op) for who, resource, _, name, op in rules if who == "partner"}
    assert partner == {("TOPIC", INBOUND, "WRITE"), ("TOPIC", INBOUND, "DESCRIBE")}
    sink = {(resource, name, op) for who, resource, _, name, op in rules if who == "sink"}
    assert {op for _, _, op in sink} == {"READ", "DESCRIBE"}
    assert {name for resource, name, _ in sink if resource == "TOPIC"} == set(SINK_TOPICS)
    assert INBOUND not in SINK_TOPICS
    worker_topics = {name for who, resource, pattern, name, _ in rules
                     if who == "worker" and resource == "TOPIC" and pattern == "LITERAL"}
    assert worker_topics == {spec.name for spec in TOPICS}
    assert ("worker", "TOPIC", "PREFIXED", "sgi-", "ALL") in rules
    assert {who for who, *_ in rules} == {"partner", "worker", "sink"}  # admin is a super user, no ACLs needed


def test_passwords_are_made_once_owner_only_and_fit_the_storage_tool(tmp_path: Path) -> None:
    path = tmp_path / "access.json"
    passwords = kafka_access.load_or_make_passwords(path)
    assert set(passwords) == set(kafka_access.PRINCIPALS) and len(set(passwords.values())) == 4
    assert path.stat().st_mode & 0o777 == 0o600
    assert kafka_access.load_or_make_passwords(path) == passwords
    arguments = kafka_access.scram_arguments(passwords)
    assert arguments.count("--add-scram") == 2 * len(passwords)
    assert f"SCRAM-SHA-512=[name=partner,password={passwords['partner']}]" in arguments
    path.write_text(json.dumps({"admin": "x"}))
    with pytest.raises(kafka_access.AccessError, match="principals"):
        kafka_access.load_or_make_passwords(path)


def test_certificates_verify_for_the_broker_host_only(tmp_path: Path) -> None:
    from cryptography import x509

    ca_file, broker_file = kafka_access.make_certificates(tmp_path / "tls", "127.0.0.1")
    assert broker_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka's PEM store reads
    assert ca_file.stat().st_mode & 0o777 == 0o600 and broker_file.stat().st_mode & 0o777 == 0o600
    certificate = x509.load_pem_x509_certificates(broker_file.read_bytes())[0]
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    issuer = x509.load_pem_x509_certificate(ca_file.read_bytes())
    certificate.verify_directly_issued_by(issuer)  # raises if the CA did not sign it


def test_a_data_dir_is_never_started_the_other_way(tmp_path: Path) -> None:
    secured_dir = tmp_path / "secured"
    secured_dir.mkdir()
    kafka_access.load_or_make_passwords(secured_dir / "access.json")
    with pytest.raises(KafkaLaunchError, match="holds a secured broker"):
        LocalKafka(home=tmp_path, data_dir=secured_dir)._prepare_access()

    plain_dir = tmp_path / "plain"
    (plain_dir / "logs").mkdir(parents=True)
    (plain_dir / "logs" / "meta.properties").write_text("formatted\n")
    with pytest.raises(KafkaLaunchError, match="formatted without --secure"):
        LocalKafka(home=tmp_path, data_dir=plain_dir, secure=True)._prepare_access()


def test_secured_broker_config_has_no_open_listener(tmp_path: Path) -> None:
    broker = LocalKafka(home=tmp_path, data_dir=tmp_path / "kafka", port=19092, controller_port=19093, secure=True)
    broker._prepare_access()
    config = broker._write_config()
    assert config.stat().st_mode & 0o777 == 0o600  # it holds the admin password
    properties = dict(line.split("=", 1) for line in config.read_text().splitlines())
    assert properties["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert properties["listeners"] == "SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert properties["listener.name.controller.ssl.client.auth"] == "required"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["super.users"] == f"User:admin;User:CN={kafka_access.BROKER_CN}"
    assert broker.client_env("partner")["SGI_KAFKA_USERNAME"] == "partner"


def test_a_plain_broker_ignores_a_login_in_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SGI_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SGI_KAFKA_USERNAME", "worker")
    monkeypatch.setenv("SGI_KAFKA_PASSWORD", "pw")
    plain = LocalKafka(home=tmp_path, data_dir=tmp_path / "kafka", port=19092)
    assert kafka_python_options(plain.client_settings()) == {}
    assert plain.client_env("worker")["SGI_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
