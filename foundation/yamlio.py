"""Safe, bounded YAML reading and atomic file writing for specs, catalogs and stack files."""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer

from foundation.errors import InputError, Problem

MAX_YAML_BYTES = 256 * 1024
"""A spec or catalog file larger than this is refused before parsing."""
MAX_ALIASES = 64
"""Alias references allowed in one document: enough for hand-written anchors, far too few for a bomb."""
MAX_DEPTH = 32
"""Nesting depth allowed in one document."""


class _Bounds:
    """The bounds every loader here adds to a safe loader (no Python tags): aliases and depth are counted as nodes
    are composed, before anything deeper is read, and duplicate or non-scalar keys are refused."""

    def _start_bounds(self) -> None:
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} alias references (possible alias bomb)")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # One pass in place of SafeConstructor's (merge keys, which it would flatten first, are refused below:
        # their key has no constructor here, as before).
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping node, but found {node.id}", node.start_mark
            )
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
            if isinstance(key, list | dict | set):
                raise yaml.constructor.ConstructorError(None, None, "mapping keys must be scalars", key_node.start_mark)
            if key in mapping:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)  # type: ignore[attr-defined]
        return mapping


class _BoundedLoader(_Bounds, yaml.SafeLoader):
    """The pure-Python loader: PyYAML's own scanner, parser and composer."""

    def __init__(self, stream: str) -> None:
        self._start_bounds()
        yaml.SafeLoader.__init__(self, stream)


_CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)

if _CSafeLoader is not None:

    class _FastBoundedLoader(_Bounds, Composer, _CSafeLoader):
        """libyaml scans and parses (in C, without recursion, an event at a time: most of the speed); the composer
        stays PyYAML's Python one, so the bounds above are checked before a deeper node is read. libyaml's own
        composer recurses in C: a deep document would exhaust the C stack (only libyaml builds that cap nesting
        themselves stop it) instead of raising, and the bounds would need a second pass over the events."""

        def __init__(self, stream: str) -> None:
            self._start_bounds()
            _CSafeLoader.__init__(self, stream)
            Composer.__init__(self)

    _LOADER: type = _FastBoundedLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _LOADER = _BoundedLoader


def load_yaml_text(text: str, source: str) -> Any:
    """Parse one YAML document safely; every failure is an InputError naming `source`."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise InputError.single(source, "", f"file is larger than {MAX_YAML_BYTES // 1024} KiB")
    try:
        try:
            return _load(_LOADER, text)
        except UnicodeEncodeError:
            # libyaml takes the text as UTF-8: a lone surrogate (never from a decoded file) cannot be encoded,
            # and the pure-Python reader refuses it with its own message.
            return _load(_BoundedLoader, text)
    except yaml.YAMLError as exc:
        raise InputError.single(source, "", f"not valid YAML: {_one_line(exc)}") from None
    except RecursionError:
        raise InputError.single(source, "", "YAML nesting is too deep") from None


def _load(loader_class: type, text: str) -> Any:
    loader = loader_class(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_bounded(path: Path, display: str | None = None) -> bytes:
    """The bytes of `path`, refusing non-files and files over the size bound (read once: what is parsed is
    what a change later writes)."""
    source = display or str(path)
    try:
        if not path.is_file():
            raise InputError.single(source, "", "no such file" if not path.exists() else "not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise InputError.single(source, "", f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise InputError.single(source, "", f"file is larger than {MAX_YAML_BYTES // 1024} KiB")
    return raw


def decode_text(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError.single(source, "", "not UTF-8 text") from None


def load_yaml_bytes(raw: bytes, source: str) -> Any:
    return load_yaml_text(decode_text(raw, source), source)


def load_yaml_file(path: Path, display: str | None = None) -> Any:
    """Read and parse `path`, refusing non-files, oversized files and undecodable bytes."""
    source = display or str(path)
    return load_yaml_bytes(read_bounded(path, source), source)


def edit_yaml_text(text: str, source: str, edit: Callable[[Any], None]) -> str:
    """Apply `edit` to a round-trip parse of `text` and return the new text: comments, key order, quoting and
    every key `edit` does not touch survive. `text` must already pass the bounded loader."""
    from ruamel.yaml import YAML

    load_yaml_text(text, source)  # the bounded checks (aliases, depth, duplicates, no tags) come first
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 100
    document = rt.load(text)
    if document is None:
        from ruamel.yaml.comments import CommentedMap

        document = CommentedMap()
    edit(document)
    buffer = io.StringIO()
    rt.dump(document, buffer)
    result = buffer.getvalue()
    return result.replace("\n", "\r\n") if "\r\n" in text else result


def remove_key(mapping: Any, key: str) -> None:
    """Remove `key` from a round-trip mapping, keeping the comment lines that followed it (ruamel hangs them on
    the key): they move to the key before it, or to the mapping itself."""
    if key not in mapping:
        return
    keys = list(mapping)
    position = keys.index(key)
    comment = mapping.ca.items.pop(key, None)
    trailing = comment[2] if comment and len(comment) > 2 else None
    mapping.pop(key)
    if trailing is None:
        return
    if position > 0:
        previous = keys[position - 1]
        slot = mapping.ca.items.setdefault(previous, [None, None, None, None])
        if slot[2] is None:
            slot[2] = trailing
        else:
            slot[2].value += trailing.value
    else:
        mapping.ca.comment = mapping.ca.comment or [None, []]
        mapping.ca.comment[1] = (mapping.ca.comment[1] or []) + [trailing]


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def write_atomic(path: Path, content: str | bytes | list[str]) -> None:
    """Write `content` (text, bytes, or text in pieces, written one after the other) to `path` through a temporary
    file in the same directory, fsync, rename, fsync the directory: a crash leaves the old file or the new one,
    never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pieces = content if isinstance(content, list) else [content]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600: keep the mode of the file replaced, else what the umask gives a new file,
        # so specs and stack files stay readable by whoever could read them before.
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as handle:
            for piece in pieces:
                handle.write(piece.encode("utf-8") if isinstance(piece, str) else piece)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def _mode_for(path: Path) -> int:
    try:
        current = path.lstat()
        if stat.S_ISREG(current.st_mode):
            return stat.S_IMODE(current.st_mode)
    except OSError:
        pass
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_output_file(path: Path, option: str) -> None:
    """An output file named on the command line must be writable as a file: refuse it before any work."""
    if path.is_dir():
        raise InputError.single(str(path), option, "is a directory; give a file path")
    if path.exists() and not path.is_file():
        # A device or a pipe (/dev/null, /dev/stdout) would be replaced by a regular file: the write renames over it.
        raise InputError.single(str(path), option, "is not a regular file (a device or a pipe); give a file path")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise InputError.single(str(path), option, f"{parent} is not a directory")
    if not parent.exists():
        raise InputError.single(str(path), option, f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError.single(str(path), option, f"directory {parent} is not writable")


def write_output(path: Path, content: str | bytes | list[str], option: str) -> None:
    """Write a file named on the command line; a failure is the argument's fault (exit 2), not a crash."""
    check_output_file(path, option)
    try:
        write_atomic(path, content)
    except OSError as exc:
        raise InputError.single(str(path), option, f"cannot write: {exc.strerror or exc}") from None


def validation_problems(source: str, exc: Any, prefix: str = "") -> list[Problem]:
    """Turn a pydantic ValidationError into one Problem per error, with dotted field paths."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        field = ".".join(([prefix] if prefix else []) + loc)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(Problem(source, field, message))
    return problems


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
