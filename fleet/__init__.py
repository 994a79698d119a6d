"""The fleet as written in git, read through one object (`Repo`): catalogs, tiers, specs, stack files."""
