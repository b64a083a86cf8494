"""Policy files: YAML documents in `flows/`, loaded at start, reloaded on change or on request.

One file is one rule set of one source (`version: 1`, `source: operator`, `rules: [...]`; see
docs/policy.md). Files are read with PyYAML's safe loader and validated by the core validator
(`sdnmip.core.policy_parse`), the same one `sdnmip check-flows` and the REST API use. Errors name
the file, the line (from the YAML marks) and the field. A reload applies every file or none: if any
file is bad the running policy stays as it was.

Change detection is split so the shell can poll cheaply: `scan` stats the files and hashes only
those whose size or mtime moved; `should_reload` (pure) compares two snapshots by content hash.

Owns no timers and no policy state beyond the files it loaded: the shell decides when to poll and
installs the Policy it gets back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sdnmip.core.policy import Policy
from sdnmip.core.policy_model import Path as FieldPath
from sdnmip.core.policy_model import PolicyError, RuleSet
from sdnmip.core.policy_parse import Context, parse_ruleset
from sdnmip.yaml_values import value_error_reason

SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 1 << 20  # a policy file is text written by people; refuse anything larger

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """A parsed policy file: its rule set, and the line of every field (for error messages)."""

    origin: str
    ruleset: RuleSet
    lines: Mapping[FieldPath, int] = field(default_factory=dict)

    def locate(self, error: PolicyError) -> PolicyError:
        return error.located(self.origin, line_of(self.lines, error.path))


def line_of(lines: Mapping[FieldPath, int], path: FieldPath) -> int | None:
    """The line of the field, or of its nearest enclosing field that has one."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def parse_text(text: str, *, origin: str, context: Context | None = None) -> LoadedFile:
    """One policy document's YAML text -> LoadedFile, or PolicyError naming origin and line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[FieldPath, int] = {}
        if node is not None:
            _walk(node, (), lines, set())
        doc = None if node is None else loader.construct_document(node)
    except PolicyError as exc:
        raise exc.located(origin, exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        problem = exc.problem or exc.context or "cannot parse"
        raise PolicyError((), f"not valid YAML: {problem}", origin=origin, line=line) from None
    except yaml.YAMLError as exc:
        raise PolicyError((), f"not valid YAML: {exc}", origin=origin) from None
    except ValueError as exc:  # a value PyYAML's constructors refuse (yaml_values.py)
        problem = f"not valid YAML: {value_error_reason(exc)}"
        raise PolicyError((), problem, origin=origin) from None
    finally:
        loader.dispose()
    if doc is None:
        raise PolicyError(
            (), "the file is empty (expected version, source and rules)", origin=origin, line=1
        )
    try:
        ruleset = parse_ruleset(doc, origin=origin, context=context)
    except PolicyError as exc:
        raise exc.located(origin, line_of(lines, exc.path)) from None
    return LoadedFile(origin, ruleset, lines)


def _walk(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int], seen: set[int]) -> None:
    """Record the line of every field, and refuse duplicate keys (PyYAML keeps the last one
    silently, which would hide a mistake). Aliased nodes are walked once."""
    if id(node) in seen:
        return
    seen.add(id(node))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            sub = (*path, key)
            if key in keys:
                raise PolicyError(sub, "duplicate key", line=key_node.start_mark.line + 1)
            keys.add(key)
            lines[sub] = key_node.start_mark.line + 1
            _walk(value_node, sub, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, seen)


def load_file(path: Path, context: Context | None = None) -> LoadedFile:
    """Read and parse one policy file; its origin is the path as given."""
    origin = str(path)
    data = _read(path, origin)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError((), f"not UTF-8 text (byte {exc.start})", origin=origin) from None
    return parse_text(text, origin=origin, context=context)


def _read(path: Path, origin: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PolicyError((), f"cannot read: {exc.strerror or exc}", origin=origin) from None
    if len(data) > MAX_FILE_BYTES:
        raise PolicyError((), f"larger than {MAX_FILE_BYTES} bytes", origin=origin)
    return data


def policy_files(directory: Path) -> list[Path]:
    """The policy files of a directory in load order: *.yaml and *.yml by name, no hidden files
    (editors' temporary copies are hidden or have other suffixes)."""
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise PolicyError(
            (), f"cannot list the directory: {exc.strerror or exc}", origin=str(directory)
        ) from None
    return [
        p for p in entries if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]


def load_files(paths: Sequence[Path], context: Context | None = None) -> list[LoadedFile]:
    """Parse every file; the first bad one raises PolicyError."""
    return [load_file(p, context) for p in paths]


def combine(running: Policy, files: Sequence[LoadedFile], replace: Iterable[str] = ()) -> Policy:
    """`running` with the rule sets of `files` put in and the origins in `replace` (the files
    loaded last time) taken out. Errors that span files (a rule id used twice, two defaults)
    come back located in their file."""
    try:
        return running.update(put=[f.ruleset for f in files], remove=replace)
    except PolicyError as exc:
        for f in files:
            if f.origin == exc.origin:
                raise f.locate(exc) from None
        raise


# ---- change detection -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stamp:
    mtime_ns: int
    size: int
    digest: str  # sha256 of the content


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the policy directory held at one scan."""

    exists: bool
    files: tuple[tuple[str, Stamp], ...] = ()


def scan(directory: Path, previous: Snapshot | None = None) -> Snapshot:
    """Stat the policy files; hash only those whose size or mtime differ from `previous`."""
    if not directory.is_dir():
        return Snapshot(exists=False)
    known = dict(previous.files) if previous is not None else {}
    out: list[tuple[str, Stamp]] = []
    for path in policy_files(directory):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # removed since the listing: the next scan will not list it either
        old = known.get(path.name)
        if old is not None and (old.mtime_ns, old.size) == (st.st_mtime_ns, st.st_size):
            out.append((path.name, old))
            continue
        try:
            digest = hashlib.sha256(_read(path, str(path))).hexdigest()
        except PolicyError:
            # Unreadable or too large: a stamp that never equals a content hash, so the reload
            # runs and reports the error once.
            digest = f"unreadable:{st.st_mtime_ns}:{st.st_size}"
        out.append((path.name, Stamp(st.st_mtime_ns, st.st_size, digest)))
    return Snapshot(exists=True, files=tuple(out))


def should_reload(previous: Snapshot | None, current: Snapshot) -> bool:
    """Pure: reload when files appeared, disappeared or changed content. A file touched but
    not changed (same hash) does not reload."""
    if previous is None:
        return True
    if previous.exists != current.exists:
        return True
    old = {name: stamp.digest for name, stamp in previous.files}
    new = {name: stamp.digest for name, stamp in current.files}
    return old != new


# ---- the shell's helper -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reload:
    """The outcome of one poll: the policy to run, whether it is new, and the refusal if any."""

    policy: Policy
    changed: bool
    error: PolicyError | None = None


class PolicyDirectory:
    """Loads `flows/` and keeps it in force: the shell calls `poll` on a timer and `reload` on
    request (SIGHUP, REST), and installs `Reload.policy` when `changed`.

    Rule sets that came from elsewhere (the REST API, applications) are carried over untouched.
    """

    def __init__(self, directory: Path, context: Context | None = None) -> None:
        self.directory = directory
        self.context = context
        self._snapshot: Snapshot | None = None
        self._origins: tuple[str, ...] = ()

    @property
    def origins(self) -> tuple[str, ...]:
        """The origins (file paths) of the rule sets this directory put in the policy."""
        return self._origins

    def load(self, running: Policy) -> Policy:
        """The first load, at start: raises PolicyError (there is no old policy to keep)."""
        snapshot = scan(self.directory)
        policy = self._build(running)
        self._snapshot = snapshot
        return policy

    def pending(self) -> bool:
        """Whether `poll` would reload (a cheap check the shell makes outside its lock)."""
        return should_reload(self._snapshot, scan(self.directory, self._snapshot))

    def poll(self, running: Policy) -> Reload:
        """Reload if the files changed since the last load or poll."""
        snapshot = scan(self.directory, self._snapshot)
        if not should_reload(self._snapshot, snapshot):
            return Reload(running, changed=False)
        # Remember this state even if it is refused: the same bad files are reported once,
        # and the next edit triggers a new attempt.
        self._snapshot = snapshot
        return self._reload(running)

    def reload(self, running: Policy) -> Reload:
        """Reload now (SIGHUP, REST). A bad file refuses the whole reload and `running` stays in
        force. The files as read now count as seen: the poll timer does not load them again."""
        self._snapshot = scan(self.directory, self._snapshot)
        return self._reload(running)

    def _reload(self, running: Policy) -> Reload:
        try:
            policy = self._build(running)
        except PolicyError as exc:
            return Reload(running, changed=False, error=exc)
        return Reload(policy, changed=True)

    def _build(self, running: Policy) -> Policy:
        if not self.directory.is_dir():
            raise PolicyError((), "no such directory", origin=str(self.directory))
        files = load_files(policy_files(self.directory), self.context)
        policy = combine(running, files, replace=self._origins)
        self._origins = tuple(f.origin for f in files)
        return policy


def check_paths(
    paths: Sequence[Path], context: Context | None = None
) -> tuple[list[tuple[Path, int]], list[PolicyError]]:
    """What `sdnmip check-flows` runs: every file alone, then all of them together.

    Returns the good files with their rule counts and every error (one per bad file, or the
    first error that spans files when each file is good alone).
    """
    good: list[tuple[Path, int]] = []
    loaded: list[LoadedFile] = []
    errors: list[PolicyError] = []
    for path in paths:
        try:
            f = load_file(path, context)
        except PolicyError as exc:
            errors.append(exc)
            continue
        loaded.append(f)
        good.append((path, len(f.ruleset.rules)))
    if not errors:
        try:
            combine(Policy.build(), loaded)
        except PolicyError as exc:
            errors.append(exc)
    return good, errors


def expand(paths: Iterable[str]) -> list[Path]:
    """Command-line arguments: files as given, directories as their policy files."""
    out: list[Path] = []
    for arg in paths:
        path = Path(arg)
        out.extend(policy_files(path) if path.is_dir() else [path])
    return out


__all__ = [
    "LoadedFile",
    "PolicyDirectory",
    "Reload",
    "Snapshot",
    "Stamp",
    "check_paths",
    "combine",
    "expand",
    "load_file",
    "load_files",
    "parse_text",
    "policy_files",
    "scan",
    "should_reload",
]
