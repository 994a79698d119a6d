"""The bottom layer every other package imports: errors, bounded YAML I/O and atomic writes, stack names, naming."""
