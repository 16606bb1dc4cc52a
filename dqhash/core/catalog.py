"""The table catalog: every table dqhash proves, declared once (docs/catalog.md).

A table is its on-prem name (``schema.table``), its cloud ``keyspace.table``, its key columns (partition key,
then clustering columns), the columns it hashes with their types, the columns renamed between the sides or
left out, its hash strategy and its failure cap. The on-prem parser, the cloud reader, the snapshot scan and
the reports all read the table from here.

A ``[[table]]`` entry with ``match`` instead of ``name`` is a pattern (``shop.*``): one set of rules for every
table whose name it matches, resolved when a record first names such a table. ``{schema}`` and ``{table}`` in
its ``cloud`` name are the matched name's parts.

Parsing is pure: text in, a :class:`Catalog` or a :class:`CatalogError` naming the table and the field.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any, NamedTuple

from dqhash.core.canonical import CanonicalError, parse_type
from dqhash.core.table_keys import SEPARATOR

#: Hash strategies a table may use (docs/hashing.md); ``input_records.KNOWN_HASH_VERSIONS`` reads hashes of both.
STRATEGIES = ("v1", "v2")
#: A table name: letters, digits and ``_ $ - .``; the dots separate database / schema / table.
_NAME = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_$.\-]{0,199}")
_COLUMN = re.compile(r"[^\x00-\x1f]{1,128}")
#: Names resolved through patterns, remembered: past this many, a name is resolved again each time it comes.
_RESOLVED_KEPT = 10_000

_TABLE_FIELDS = frozenset(
    {"name", "match", "cloud", "key", "columns", "types", "rename", "exclude", "hash_strategy", "failure_cap"}
)
_TOP_FIELDS = frozenset({"default", "defaults", "table"})


class CatalogError(ValueError):
    """The catalog cannot be used: the message names the table and the field, and says what to write."""


class TableSpec(NamedTuple):
    """One table, as both sides read it."""

    name: str  # on-prem ``schema.table``: what records name
    cloud: str  # ``keyspace.table``
    key: tuple[str, ...]  # partition key then clustering columns, in order (empty: the cloud table's own)
    columns: tuple[str, ...] | None  # the hashed columns (None: every column but the excluded ones)
    types: Mapping[str, str]  # column → CQL type, for the hasher (docs/hashing.md)
    rename: Mapping[str, str]  # on-prem column → its cloud name; rows are hashed under the on-prem names
    exclude: tuple[str, ...]  # columns never hashed
    hash_strategy: str
    failure_cap: int  # problem verdicts after which the table is suspended (0: never)

    @property
    def cloud_keyspace(self) -> str:
        return self.cloud.rpartition(".")[0]

    @property
    def cloud_table(self) -> str:
        return self.cloud.rpartition(".")[2]

    def cloud_names(self) -> dict[str, str]:
        """cloud column → on-prem column, for the renamed ones."""
        return {cloud: onprem for onprem, cloud in self.rename.items()}


class Pattern(NamedTuple):
    match: str
    rules: dict[str, Any]  # the entry's fields but ``match``; ``cloud`` may hold ``{schema}`` / ``{table}``


class Catalog:
    """The tables of one deployment, and which one a record without a ``table`` field belongs to."""

    def __init__(self, tables: Iterable[TableSpec], patterns: Iterable[Pattern] = (), default: str = "") -> None:
        self.tables: dict[str, TableSpec] = {t.name: t for t in tables}
        self.patterns = tuple(patterns)
        #: the table of records that name none; its pairs are keyed by the bare PK (``core.table_keys``)
        self.default = default
        self._resolved: dict[str, TableSpec | None] = {}

    def get(self, name: str) -> TableSpec | None:
        """The table ``name``: declared, or the first pattern it matches; None for a table not in the catalog."""
        spec = self.tables.get(name)
        if spec is not None:
            return spec
        if name in self._resolved:
            return self._resolved[name]
        spec = self._from_pattern(name)
        if len(self._resolved) < _RESOLVED_KEPT:
            self._resolved[name] = spec
        return spec

    def _from_pattern(self, name: str) -> TableSpec | None:
        if not _NAME.fullmatch(name):
            return None
        for pattern in self.patterns:
            if fnmatchcase(name, pattern.match):
                schema, _, table = name.rpartition(".")
                rules = dict(pattern.rules)
                rules["cloud"] = str(rules.get("cloud", "{schema}.{table}")).format(schema=schema, table=table)
                return _spec(name, rules, f"table {name!r} (matched by {pattern.match!r})")
        return None

    def has_caps(self) -> bool:
        """Whether any table or pattern has a failure cap."""
        return any(t.failure_cap for t in self.tables.values()) or any(
            p.rules.get("failure_cap") for p in self.patterns
        )

    def hashed_columns(self) -> tuple[str, ...] | None:
        """Every column some table hashes, when every table lists its columns; None when one hashes them all."""
        specs = list(self.tables.values())
        lists = [s.columns for s in specs] + [p.rules.get("columns") for p in self.patterns]
        if any(columns is None for columns in lists):
            return None
        return tuple(sorted({c for columns in lists for c in columns}))  # type: ignore[union-attr]

    def known(self) -> list[str]:
        """Declared table names, then patterns: what an error about an unknown table lists."""
        return [*self.tables, *(p.match for p in self.patterns)]

    @property
    def default_spec(self) -> TableSpec | None:
        return self.get(self.default) if self.default else None

    def __len__(self) -> int:
        return len(self.tables)


def single_table(
    name: str,
    cloud: str = "",
    key: Iterable[str] = (),
    columns: Iterable[str] | None = None,
    types: Mapping[str, str] | None = None,
    hash_strategy: str = "v2",
) -> Catalog:
    """Today's single-table settings as a catalog of one table, which records need not name."""
    spec = TableSpec(
        name, cloud, tuple(key), tuple(columns) if columns is not None else None, dict(types or {}), {}, (),
        hash_strategy, 0,
    )  # fmt: skip
    return Catalog([spec], default=name)


def parse_catalog(text: str, source: str = "the catalog") -> Catalog:
    """Read a catalog in TOML; every problem is a :class:`CatalogError` naming the table and the field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source} is not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - _TOP_FIELDS)
    if unknown:
        raise CatalogError(f"{source}: unknown top-level field(s) {unknown}; expected default, [defaults], [[table]]")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise CatalogError(f"{source}: [defaults] must be a table of fields every table inherits")
    _check_fields(defaults, "[defaults]", allowed=_TABLE_FIELDS - {"name", "match"})
    entries = doc.get("table", [])
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f'{source}: no [[table]] entries; declare at least one table (name = "schema.table")')
    tables: list[TableSpec] = []
    patterns: list[Pattern] = []
    for number, entry in enumerate(entries, 1):
        _entry(entry, number, defaults, tables, patterns)
    names = [t.name for t in tables]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CatalogError(f"{source}: table(s) declared twice: {twice}")
    default = doc.get("default", "")
    catalog = Catalog(tables, patterns, default if isinstance(default, str) else "")
    if default and (not isinstance(default, str) or catalog.get(default) is None):
        raise CatalogError(f"{source}: default = {default!r} names no table of the catalog; known: {catalog.known()}")
    return catalog


def _entry(entry: Any, number: int, defaults: dict[str, Any], tables: list[TableSpec], patterns: list[Pattern]) -> None:
    if not isinstance(entry, dict):
        raise CatalogError(f"[[table]] #{number} must be a table of fields")
    name, match = entry.get("name"), entry.get("match")
    where = f"table {name!r}" if name else f"[[table]] #{number} (match = {match!r})"
    _check_fields(entry, where, _TABLE_FIELDS)
    if (name is None) == (match is None):
        raise CatalogError(f"[[table]] #{number}: give exactly one of name (a table) or match (a pattern)")
    rules = {**defaults, **{k: v for k, v in entry.items() if k not in ("name", "match")}}
    if match is not None:
        if not isinstance(match, str) or not re.fullmatch(r"[A-Za-z0-9_$.\-*?\[\]!]{1,200}", match):
            raise CatalogError(f'{where}: match must be a table name pattern such as "shop.*"')
        _spec("schema.table", rules, where)  # checks every rule now, not when the first record comes
        patterns.append(Pattern(match, rules))
        return
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CatalogError(f"[[table]] #{number}: name {name!r} is not a table name (letters, digits, _ $ - .)")
    if "cloud" not in rules:
        raise CatalogError(f'{where}: missing field cloud (the cloud "keyspace.table")')
    tables.append(_spec(name, rules, where))


def _check_fields(entry: dict[str, Any], where: str, allowed: frozenset[str]) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {unknown}; a table has {sorted(allowed)}")


def _spec(name: str, rules: Mapping[str, Any], where: str) -> TableSpec:
    cloud = rules.get("cloud", "")
    if not isinstance(cloud, str) or not re.fullmatch(r"[A-Za-z0-9_{}]+\.[A-Za-z0-9_{}]+", cloud):
        raise CatalogError(f'{where}: cloud must be "keyspace.table", got {cloud!r}')
    key = _names(rules.get("key", []), where, "key")
    columns = rules.get("columns")
    hashed = None if columns is None else _names(columns, where, "columns")
    if hashed is not None and not hashed:
        raise CatalogError(f"{where}: columns is empty; leave it out to hash every column")
    types = _mapping(rules.get("types", {}), where, "types")
    for column, ctype in types.items():
        try:
            parse_type(ctype)
        except CanonicalError as exc:
            raise CatalogError(f"{where}: types.{column} = {ctype!r} is not a CQL type: {exc}") from None
    rename = _mapping(rules.get("rename", {}), where, "rename")
    exclude = _names(rules.get("exclude", []), where, "exclude")
    both = sorted(set(exclude) & set(hashed or ()))
    if both:
        raise CatalogError(f"{where}: column(s) {both} are both hashed (columns) and excluded (exclude)")
    strategy = rules.get("hash_strategy", "v2")
    if strategy not in STRATEGIES:
        raise CatalogError(f"{where}: hash_strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    cap = rules.get("failure_cap", 0)
    if type(cap) is not int or cap < 0:
        raise CatalogError(f"{where}: failure_cap must be a whole number >= 0 (0: never suspend), got {cap!r}")
    return TableSpec(name, cloud, key, hashed, types, rename, exclude, strategy, cap)


def _names(value: Any, where: str, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and _COLUMN.fullmatch(v) for v in value):
        raise CatalogError(f"{where}: {field} must be a list of column names, got {value!r}")
    if len(set(value)) != len(value):
        raise CatalogError(f"{where}: {field} names a column twice: {value}")
    return tuple(value)


def _mapping(value: Any, where: str, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        raise CatalogError(f'{where}: {field} must be a table of column = "text", got {value!r}')
    return dict(value)


def check_name(name: str) -> bool:
    """A table name a record may carry: a catalog name, and never the pair key's separator."""
    return bool(_NAME.fullmatch(name)) and SEPARATOR not in name


def render_catalog(specs: Iterable[TableSpec], notes: Iterable[str] = (), source: str = "") -> str:
    """A catalog file of ``specs`` (what ``dqhash catalog discover`` writes), which :func:`parse_catalog` reads back."""
    lines = ["# dqhash table catalog (docs/catalog.md)"]
    if source:
        lines.append(f"# discovered from {source}: review the on-prem names, columns and types before use")
    lines.extend(f"# NOTE: {note}" for note in notes)
    for spec in specs:
        lines += ["", "[[table]]", f"name = {_toml(spec.name)}", f"cloud = {_toml(spec.cloud)}"]
        lines.append(f"key = [{', '.join(_toml(c) for c in spec.key)}]")
        if spec.columns is not None:
            lines.append(f"columns = [{', '.join(_toml(c) for c in spec.columns)}]")
        for field in ("types", "rename"):
            mapping = getattr(spec, field)
            if mapping:
                lines.append(f"{field} = {{ {', '.join(f'{_toml(k)} = {_toml(v)}' for k, v in mapping.items())} }}")
        if spec.exclude:
            lines.append(f"exclude = [{', '.join(_toml(c) for c in spec.exclude)}]")
        if spec.hash_strategy != "v2":
            lines.append(f"hash_strategy = {_toml(spec.hash_strategy)}")
        if spec.failure_cap:
            lines.append(f"failure_cap = {spec.failure_cap}")
    return "\n".join(lines) + "\n"


def _toml(text: str) -> str:
    """A TOML basic string (JSON's string escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)
