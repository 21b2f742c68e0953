"""Every setting of the project: one frozen pydantic-settings class per external system, read from
SGI_* environment variables.

The bottom layer: it imports nothing of the project, and everything may import it. Settings are built
once at the edge (a command, the worker) and passed in; nothing deeper reads os.environ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent


# --- Kafka ------------------------------------------------------------------------------------------


class KafkaSettings(BaseSettings):
    """Where the broker is and how to log in to it. `sgi kafka start` runs a local one on this port.

    PLAINTEXT (the default) has no authentication: for a broker only this machine reaches. SASL_SSL
    encrypts with TLS (trusting `ssl_cafile`, or the system's CAs when unset) and logs in with SCRAM as
    `username`; the broker's ACLs then decide what that principal may do.
    """

    model_config = SettingsConfigDict(env_prefix="SGI_KAFKA_", frozen=True)

    bootstrap: str = "127.0.0.1:9092"
    # Local broker only: where the fetched jars and the broker's data live.
    home: Path = PROJECT_ROOT / ".cache" / "kafka"
    data_dir: Path = PROJECT_ROOT / "var" / "kafka"
    partitions: int = 4
    # 1 for the local single broker; 3 on a production cluster.
    replication: int = 1
    security_protocol: Literal["PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    username: str = ""
    password: SecretStr = SecretStr("")
    ssl_cafile: Path | None = None

    @model_validator(mode="after")
    def _login_given(self) -> KafkaSettings:
        # Caught here, at start-up, rather than as an opaque authentication failure later.
        if self.security_protocol == "SASL_SSL" and not (self.username and self.password.get_secret_value()):
            raise ValueError("SGI_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs SGI_KAFKA_USERNAME and SGI_KAFKA_PASSWORD")
        return self


# --- the pseudonymisation secret --------------------------------------------------------------------


class PseudonymisationSettings(BaseSettings):
    """The HMAC secret. There is no default: without it the pipeline refuses to start."""

    model_config = SettingsConfigDict(env_prefix="SGI_", frozen=True)

    pseudonymisation_key: SecretStr


MISSING_KEY = (
    "error: SGI_PSEUDONYMISATION_KEY is not set. The pipeline refuses to start without the secret "
    "that pseudonymises identifiers; set it from your secret store (e.g. `export SGI_PSEUDONYMISATION_KEY=...`)."
)


def load_secret() -> bytes | None:
    """The HMAC secret from SGI_PSEUDONYMISATION_KEY, or None when it is unset or empty (callers
    refuse to start with MISSING_KEY)."""
    try:
        key = PseudonymisationSettings().pseudonymisation_key.get_secret_value()
    except ValidationError:
        return None
    return key.encode("utf-8") if key else None


# --- the Faust worker -------------------------------------------------------------------------------

STAGES = ("ingest", "forward", "identity", "child", "place", "clock")


class WorkerSettings(BaseSettings):
    """The Faust worker, and the rules config every reader of local time and thresholds shares."""

    model_config = SettingsConfigDict(env_prefix="SGI_WORKER_", frozen=True)

    app_id: str = "sgi"
    data_dir: Path = PROJECT_ROOT / "var" / "faust"
    # Rules configuration (thresholds, the local time zone); None means the shipped defaults.
    rules: Path | None = None
    # Which stages this worker runs (comma-separated subset of STAGES); empty means all. For
    # benchmarks that time one stage alone; production runs all of them.
    stages: str = ""


def selected_stages(worker: WorkerSettings) -> frozenset[str]:
    """The stages named in SGI_WORKER_STAGES (all when empty); an unknown name is an error."""
    names = {name.strip() for name in worker.stages.split(",") if name.strip()}
    unknown = names - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)} in SGI_WORKER_STAGES; known: {', '.join(STAGES)}")
    return frozenset(names or STAGES)


# --- ClickHouse -------------------------------------------------------------------------------------


class ClickHouseSettings(BaseSettings):
    """Embedded chDB under `path` (the default) or a ClickHouse server."""

    model_config = SettingsConfigDict(env_prefix="SGI_CLICKHOUSE_", frozen=True)

    mode: Literal["chdb", "server"] = "chdb"
    path: Path = PROJECT_ROOT / "var" / "chdb"
    host: str = "127.0.0.1"
    port: int = 8123
    user: str = "default"
    password: SecretStr = SecretStr("")
    database: str = "safeguarding"


class ReaderSettings(BaseSettings):
    """The password of the `grafana_reader` user (ClickHouse server only). No default."""

    model_config = SettingsConfigDict(env_prefix="SGI_CLICKHOUSE_READER_", frozen=True)

    password: SecretStr


class RetentionSettings(BaseSettings):
    """How long ClickHouse keeps each kind of row.

    Each period is substituted into the migrations as a `{..._ttl_days}` placeholder when a table is
    created. ClickHouse fixes a table's TTL at CREATE time: changing a period later needs a new
    migration (`ALTER TABLE ... MODIFY TTL`), not just a new environment variable.

    The defaults are a starting point for a local authority's retention schedule, agreed with its
    Data Protection Officer; they are not legal advice.
    """

    model_config = SettingsConfigDict(env_prefix="SGI_RETENTION_", frozen=True)

    # 2 years from occurred_at: contextual safeguarding intelligence is reviewed for continued
    # relevance at two years under a typical local retention schedule (Working Together to Safeguard
    # Children 2023 leaves retention to local information-sharing agreements; UK GDPR Art. 5(1)(e)
    # storage limitation). The child's case record itself lives in the agency's case system.
    # Also applies to the derived per-child and per-place tables (episodes, child_state, places).
    events_days: int = Field(default=730, ge=1)
    # 6 years from the alert's last change: the common local-authority period for case-management
    # and decision records (IRMS retention guidelines; Limitation Act 1980's six years), so a
    # review or complaint can see what the pipeline raised and when.
    alerts_days: int = Field(default=2190, ge=1)
    # 30 days: dead-letter counts are operational diagnostics for partner developers; no payload
    # is stored here, and the raw messages themselves live only on the 3-day dead-letter topic.
    deadletter_days: int = Field(default=30, ge=1)

    def placeholders(self) -> dict[str, str]:
        """Values for the `{name}` placeholders in sinks/schema/*.sql."""
        return {
            "events_ttl_days": str(self.events_days),
            "alerts_ttl_days": str(self.alerts_days),
            "deadletter_ttl_days": str(self.deadletter_days),
        }


# --- Grafana ----------------------------------------------------------------------------------------


class GrafanaSettings(BaseSettings):
    """The Grafana to push to. The token is a service account token (Admin role)."""

    model_config = SettingsConfigDict(env_prefix="SGI_GRAFANA_", frozen=True)

    token: SecretStr = SecretStr("")
