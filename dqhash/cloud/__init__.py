"""The cloud side: the store protocol, Cassandra and SQLite stores, the cloud hash reader, the Cassandra audit sink."""
