"""``dqhash snapshot``: the reference on-prem publisher, the cloud scan and the report (docs/snapshots.md)."""
