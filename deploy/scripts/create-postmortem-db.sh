#!/bin/sh
# Our reports live in their own database, beside Temporal's; its password comes from .env
# (POSTMORTEM_DB_PASSWORD), handed to this first-start script by the postgresql service.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v password="$POSTMORTEM_DB_PASSWORD" <<'SQL'
CREATE USER postmortem WITH PASSWORD :'password';
CREATE DATABASE postmortem OWNER postmortem;
SQL
