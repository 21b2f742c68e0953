"""How long ClickHouse keeps each kind of row. Read from SGI_RETENTION_* at the edge and passed in.

Each period is substituted into the migrations as a `{..._ttl_days}` placeholder when a table is
created. ClickHouse fixes a table's TTL at CREATE time: changing a period later needs a new
migration (`ALTER TABLE ... MODIFY TTL`), not just a new environment variable.

The defaults are a starting point for a local authority's retention schedule, agreed with its
Data Protection Officer; they are not legal advice.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetentionSettings(BaseSettings):
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


class ReaderSettings(BaseSettings):
    """The password of the `grafana_reader` user (ClickHouse server only). No default."""

    model_config = SettingsConfigDict(env_prefix="SGI_CLICKHOUSE_READER_", frozen=True)

    password: SecretStr
