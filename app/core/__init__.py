"""The core: settings, database, tables, errors, security, audit chain; imports no feature."""
