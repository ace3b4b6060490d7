"""The weekly job's logic without Prefect: content keys, lineage, the release gate and model releases.
The top of the library; flows/ and the CLI call it."""
