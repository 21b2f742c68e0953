"""One frozen settings class per external system, read from SGI_* environment variables.

Built once at the edge (the CLI or the worker) and passed in; nothing deeper reads os.environ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class KafkaSettings(BaseSettings):
    """Where the broker is. `sgi kafka start` runs a local one on this port."""

    model_config = SettingsConfigDict(env_prefix="SGI_KAFKA_", frozen=True)

    bootstrap: str = "127.0.0.1:9092"
    # Local broker only: where the fetched jars and the broker's data live.
    home: Path = PROJECT_ROOT / ".cache" / "kafka"
    data_dir: Path = PROJECT_ROOT / "var" / "kafka"
    partitions: int = 4
    # 1 for the local single broker; 3 on a production cluster.
    replication: int = 1


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


class WorkerSettings(BaseSettings):
    """The Faust worker."""

    model_config = SettingsConfigDict(env_prefix="SGI_WORKER_", frozen=True)

    app_id: str = "sgi"
    data_dir: Path = PROJECT_ROOT / "var" / "faust"
    web_port: int = 6066
    # Rules configuration (thresholds); None means the shipped defaults.
    rules: Path | None = None
    # Which stages this worker runs (comma-separated subset of STAGES); empty means all. For
    # benchmarks that time one stage alone; production runs all of them.
    stages: str = ""


STAGES = ("ingest", "forward", "identity", "child", "place", "clock")


def selected_stages(worker: WorkerSettings) -> frozenset[str]:
    """The stages named in SGI_WORKER_STAGES (all when empty); an unknown name is an error."""
    names = {name.strip() for name in worker.stages.split(",") if name.strip()}
    unknown = names - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)} in SGI_WORKER_STAGES; known: {', '.join(STAGES)}")
    return frozenset(names or STAGES)
