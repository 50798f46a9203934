#!/bin/sh
# Creates (or upgrades) Temporal's own databases on the compose PostgreSQL. Safe to re-run.
set -eu
tool="temporal-sql-tool --plugin postgres12 --ep postgresql -u temporal -p 5432"
for db in temporal temporal_visibility; do
  $tool --db "$db" create || true
done
$tool --db temporal setup-schema -v 0.0
$tool --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned
$tool --db temporal_visibility setup-schema -v 0.0
$tool --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned
