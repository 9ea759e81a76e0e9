"""Configuration items and what hangs off them: assets, relationships, support groups, people,
lineage; lookups, listings, search, and the writes that go through identification."""
