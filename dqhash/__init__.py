"""dqhash: streaming proof that a Cassandra cloud copy holds the same data as the on-prem source."""

__version__ = "0.1.0"
