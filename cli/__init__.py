"""The `platformctl` command line: parses arguments and prints; the work is in `platformctl`."""
