"""KafkaSettings' login and TLS options, spelt the way each client library wants them.

The one place that knows the options' names: every producer, consumer and admin client the project
builds takes its keyword arguments from here, so a secured broker needs no change anywhere else.
PLAINTEXT gives empty options, leaving each library's defaults as they were.
"""

from __future__ import annotations

import ssl
from typing import Any

from settings import KafkaSettings


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """Verifies the broker's certificate and host name against `ssl_cafile` (the system's CAs when unset)."""
    cafile = str(kafka.ssl_cafile) if kafka.ssl_cafile is not None else None
    return ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, cafile=cafile)


def kafka_python_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
    if kafka.security_protocol == "PLAINTEXT":
        return {}
    return {
        "security_protocol": kafka.security_protocol,
        "sasl_mechanism": kafka.sasl_mechanism,
        "sasl_plain_username": kafka.username,
        "sasl_plain_password": kafka.password.get_secret_value(),
        "ssl_context": ssl_context(kafka),
    }


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    # aiokafka takes the same names as kafka-python (it accepts only an ssl_context for TLS).
    return kafka_python_options(kafka)


def faust_credentials(kafka: KafkaSettings) -> Any:
    """Faust's `broker_credentials`: SASL over TLS, or None for PLAINTEXT (Faust's default)."""
    if kafka.security_protocol == "PLAINTEXT":
        return None
    import faust

    return faust.SASLCredentials(
        username=kafka.username,
        password=kafka.password.get_secret_value(),
        mechanism=kafka.sasl_mechanism,
        ssl_context=ssl_context(kafka),  # an ssl_context makes Faust use SASL_SSL
    )
