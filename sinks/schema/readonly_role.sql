-- Read-only access for Grafana and analysts (ClickHouse server only; chDB has no access control).
-- Not a migration: run by `sgi db reader-role` (sinks.migrate.apply_readonly_role), re-runnable.
-- readonly = 2 forbids writes and DDL but lets a client set per-query settings such as
-- max_execution_time, which the Grafana ClickHouse plugin sends with every query;
-- the constraints keep those settings within bounds.
CREATE SETTINGS PROFILE IF NOT EXISTS grafana_reader_profile
    SETTINGS readonly = 2,
             max_execution_time = 60 MAX 300,
             max_result_rows = 1000000 MAX 10000000,
             max_memory_usage = 4000000000 MAX 8000000000
;
CREATE ROLE IF NOT EXISTS grafana_reader_role
;
GRANT SELECT ON {database}.* TO grafana_reader_role
;
-- OR REPLACE so a re-run rotates the password; the role and profile are granted again below.
CREATE USER OR REPLACE grafana_reader
    IDENTIFIED WITH sha256_password BY {password}
    SETTINGS PROFILE 'grafana_reader_profile'
;
GRANT grafana_reader_role TO grafana_reader
;
ALTER USER grafana_reader DEFAULT ROLE grafana_reader_role
