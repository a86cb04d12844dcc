"""The state in PostgreSQL (`store.PostgresStore`), for an agency that outgrows one
machine: the same table groups as SQLite (`ackwatch.store.messages`, `links`, `items`,
`outbox`, `promises`, `health`), which speak SQL both databases accept, on a database of
its own: `connection` (psycopg behind the small part of the sqlite3 interface the table
groups use), `database` (its transactions and meta table) and `schema` (the same
numbered migrations, in PostgreSQL's words, the version in a ``schema_version`` table).

Only `ackwatch.store.open_store` imports this package, and only for a config with a
``database`` section: the SQLite path never loads psycopg.
"""
