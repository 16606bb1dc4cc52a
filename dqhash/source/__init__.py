"""The on-prem source database, read directly (``dqhash snapshot publish --source``): docs/source.md."""
