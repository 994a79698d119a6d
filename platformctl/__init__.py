"""platformctl: the library layer behind the `platformctl` CLI (no Typer here)."""
