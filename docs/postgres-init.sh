#!/bin/sh
# The database roles (README, "Database roles"), made once when the PostgreSQL volume is first
# initialised (compose mounts this into /docker-entrypoint-initdb.d):
#   coldchain_owner  owns the database and its schema; `coldchain migrate` connects as it
#   coldchain_app    what the service connects as: owns nothing, gets its grants from migrate
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner_password="$COLDCHAIN_DB_OWNER_PASSWORD" -v app_password="$COLDCHAIN_DB_APP_PASSWORD" <<'SQL'
CREATE ROLE coldchain_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE coldchain_app LOGIN PASSWORD :'app_password';
CREATE DATABASE coldchain OWNER coldchain_owner;
SQL
