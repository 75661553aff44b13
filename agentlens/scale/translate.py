"""The metric SQL, written once in DuckDB's dialect, as ClickHouse SQL: sqlglot parses it, agentlens's rules
rewrite what sqlglot alone gets wrong (most of them silently: the SQL would run and answer differently), and
sqlglot writes it for ClickHouse.

The rules are plain functions of the parsed statement in an ordered list (`RULES`), sqlglot-optimizer style.
Each one fixes one difference measured between the engines (docs/scale-out.md lists them with the reason).
A construct no rule knows and that is not known to mean the same on both engines (`SAME`) is refused
(`NotSupported`), never run with other semantics.

Values stay bound: DuckDB's `$name` and `?` parameters become ClickHouse query parameters `{name:Type}`,
typed from the value (and its cast, when the statement casts it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from .. import schema


class NotSupported(ValueError):
    """A statement (or a construct in it) that has no translation known to keep its meaning on ClickHouse."""


@dataclass
class Ctx:
    """What the rules share: the statement's parameter values, the types decided for them, the schema of
    the tables it may read (the contract and the registered tables)."""

    values: dict[str, Any]
    tables: Mapping[str, Mapping[str, str]]
    renames: Mapping[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    inlined: set[str] = field(default_factory=set)  # parameters a rule read (a date_trunc unit), bound no more
    fresh: int = 0

    def name(self, stem: str) -> str:
        self.fresh += 1
        return f"_{stem}{self.fresh}"


Rule = Callable[[exp.Expr, Ctx], exp.Expr]

# ---------------------------------------------------------------------------------------------------------
# Parameters. sqlglot reads DuckDB's `?::TYPE` as one token (a try-cast), so positional parameters are
# first numbered `$p0`, `$p1` ... in the text (outside strings, quoted identifiers and comments).
_SCAN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\?""", re.S)


def number_positional(sql: str) -> tuple[str, int]:
    n = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal n
        if m.group(0) != "?":
            return m.group(0)
        n += 1
        return f"$p{n - 1} "

    return _SCAN.sub(sub, sql), n


def bind(params: Any, positional: int) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, Mapping):
        return dict(params)
    values = list(params)
    if len(values) != positional:
        raise NotSupported(f"the statement has {positional} parameters, {len(values)} values were given")
    return {f"p{i}": v for i, v in enumerate(values)}


def _ch(t: str) -> exp.DataType:
    return exp.DataType.build(t, dialect="clickhouse")


def param_type(value: Any) -> str:
    """The ClickHouse type a Python value is bound as."""
    if value is None:
        return "Nullable(String)"
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, dt.datetime):
        return "DateTime64(6, 'UTC')"
    if isinstance(value, dt.date):
        return "Date"
    if isinstance(value, dt.timedelta):
        return "Int64"  # microseconds: the interval rules read it so
    if isinstance(value, list | tuple):
        inner = {param_type(v) for v in value if v is not None}
        return f"Array({inner.pop() if len(inner) == 1 else 'String'})"
    return "String"


def param_value(value: Any) -> Any:
    """The value as bound: times in UTC as text, intervals in microseconds."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.timedelta):
        return value // dt.timedelta(microseconds=1)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# --- types ----------------------------------------------------------------------------------------------
_DUCK_TO_CH = {
    exp.DataType.Type.TIMESTAMPTZ: "DateTime64(6, 'UTC')",
    exp.DataType.Type.TIMESTAMP: "DateTime64(6, 'UTC')",
    exp.DataType.Type.DOUBLE: "Float64",
    exp.DataType.Type.FLOAT: "Float32",
    exp.DataType.Type.BIGINT: "Int64",
    exp.DataType.Type.INT: "Int32",
    exp.DataType.Type.UBIGINT: "UInt64",
    exp.DataType.Type.VARCHAR: "String",
    exp.DataType.Type.TEXT: "String",
    exp.DataType.Type.BOOLEAN: "Bool",
    exp.DataType.Type.JSON: "String",
    exp.DataType.Type.DATE: "Date",
}


def _type_of(dtype: exp.DataType) -> str:
    if dtype.this == exp.DataType.Type.ARRAY and dtype.expressions:
        return f"Array({_type_of(dtype.expressions[0])})"
    t = _DUCK_TO_CH.get(dtype.this)
    if t is None:
        raise NotSupported(f"the type {dtype.sql('duckdb')}")
    return t


def _nullable(t: str) -> str:
    return t if t.startswith(("Array(", "Map(", "Nullable(")) else f"Nullable({t})"


def template(sql: str, **nodes: exp.Expr) -> exp.Expr:
    """ClickHouse SQL with slots `__name__` filled by the given expressions (copies), so that parameters and
    anything sqlglot would not read back from text stay nodes."""
    tree = sqlglot.parse_one(sql, read="clickhouse")
    for node in tree.walk():
        node.meta["agentlens_rule"] = True  # written by a rule: refuse_unknown leaves it alone

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("__") and \
                node.name.endswith("__") and node.name[2:-2] in nodes:
            return nodes[node.name[2:-2]].copy()
        return node

    return tree.transform(fill, copy=False)


# ---------------------------------------------------------------------------------------------------------
# The rules, in order.


def rename_tables(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """The tables a connection registered or created for itself (`_signal_models`, a report's `_rep`) have a
    name of their own on ClickHouse, so that two clients of one server never read each other's."""
    if not ctx.renames:
        return tree
    for t in tree.find_all(exp.Table):
        if not t.args.get("db") and t.name in ctx.renames:
            alias = t.alias or t.name
            t.set("this", exp.to_identifier(ctx.renames[t.name]))
            t.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return tree


def qualify_stars(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`g.*` after a USING join names its columns `g.x` on ClickHouse; `* EXCLUDE (...)` and `s.*` are
    expanded to their columns from the schema (sqlglot's qualify), so both engines see the same list."""
    qualified_star = any(isinstance(c.this, exp.Star) for c in tree.find_all(exp.Column))
    using = any(j.args.get("using") for j in tree.find_all(exp.Join))
    if not (qualified_star and using):
        return tree  # `*` and `* EXCLUDE (...)` (ClickHouse: `* EXCEPT`) mean the same on both engines
    try:
        tables: dict[str, object] = {k: dict(v) for k, v in ctx.tables.items()}
        tables |= {ctx.renames[k]: v for k, v in tables.items() if k in ctx.renames}  # renamed: rename_tables
        return qualify(tree, schema=tables, dialect="duckdb",
                       expand_stars=True, validate_qualify_columns=False, quote_identifiers=False,
                       qualify_columns=True, isolate_tables=False, identify=False)
    except Exception as e:  # sqlglot could not resolve a column: the statement is not one we know
        raise NotSupported(f"expanding * ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def union_by_name(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`UNION ALL BY NAME` (none on ClickHouse): both sides select the union of the columns, in the order
    DuckDB gives them (the left side's, then the right side's new ones), NULL where a side lacks one."""
    for u in list(tree.find_all(exp.Union)):
        if not u.args.get("by_name"):
            continue
        left, right = u.left, u.right
        if not isinstance(left, exp.Select) or not isinstance(right, exp.Select):
            raise NotSupported("UNION BY NAME of anything but two SELECTs")
        ln = [s.alias_or_name for s in left.expressions]
        rn = [s.alias_or_name for s in right.expressions]
        if "*" in ln or "*" in rn:
            raise NotSupported("UNION BY NAME of SELECT *")
        names = ln + [n for n in rn if n not in ln]

        def aligned(sel: exp.Select, have: list[str], names: list[str] = names) -> list[exp.Expr]:
            by = dict(zip(have, sel.expressions, strict=True))
            return [cast(exp.Expr, by[n]) if n in by else exp.alias_(exp.Null(), n) for n in names]

        left.set("expressions", aligned(left, ln))
        right.set("expressions", aligned(right, rn))
        u.set("by_name", None)
    return tree


def unpivot(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`FROM r UNPIVOT INCLUDE NULLS (value FOR name IN (a, b))`: sqlglot drops the UNPIVOT for ClickHouse
    (`SELECT * FROM r`). Rewritten as one row per column with arrayJoin over (name, value) tuples."""
    for piv in list(tree.find_all(exp.Pivot)):
        if not piv.args.get("unpivot"):
            raise NotSupported("PIVOT")
        if not piv.args.get("include_nulls"):
            raise NotSupported("UNPIVOT without INCLUDE NULLS (it drops NULL values)")
        table = piv.parent
        if not isinstance(table, exp.Table):
            raise NotSupported("UNPIVOT of a subquery")
        fields = piv.args["fields"]
        if len(fields) != 1 or len(piv.expressions) != 1:
            raise NotSupported("UNPIVOT of several value columns")
        value = piv.expressions[0].name
        infield = fields[0]
        name = infield.this.name
        cols = [c.name for c in infield.expressions]
        src = list(ctx.tables.get(table.name, {}))
        if not src:
            for cte in tree.find_all(exp.CTE):
                if cte.alias == table.name and isinstance(cte.this, exp.Select):
                    src = [e.alias_or_name for e in cte.this.expressions]
        if not src or "*" in src:
            raise NotSupported(f"UNPIVOT of {table.name}, whose columns are unknown here")
        keep = [c for c in src if c not in cols]
        u = ctx.name("u")
        pairs = ", ".join(f"tuple('{c}', `{c}`)" for c in cols)
        keep_sql = "".join(f"`{c}`, " for c in keep)
        text = (f"SELECT {keep_sql}tupleElement({u}, 1) AS `{name}`, tupleElement({u}, 2) AS `{value}` "  # noqa: S608 - names of the statement and the schema
                f"FROM `{table.name}` ARRAY JOIN [{pairs}] AS {u}")
        sub = sqlglot.parse_one(text, read="clickhouse")
        alias = table.alias or table.name
        piv.pop()
        table.replace(exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return tree


_EPOCH_MONDAY_US = 946857600 * 1_000_000  # 2000-01-03 00:00:00 UTC: the origin of DuckDB's time_bucket


def _interval_us(e: exp.Expr, ctx: Ctx) -> exp.Expr:
    """An interval as microseconds: a bound `$width::INTERVAL` (a timedelta) or an INTERVAL literal."""
    if isinstance(e, exp.Cast) and isinstance(e.this, exp.Placeholder):
        name = e.this.name
        if not isinstance(ctx.values.get(name), dt.timedelta):
            raise NotSupported(f"an interval parameter ${name} that is not a timedelta")
        ctx.types[name] = "Int64"
        return exp.Placeholder(this=name)
    if isinstance(e, exp.Interval):
        n = float(e.this.name)
        unit = e.unit.name.lower().rstrip("s") if e.unit else "second"
        scale = {"microsecond": 1, "millisecond": 1000, "second": 10**6, "minute": 60 * 10**6,
                 "hour": 3600 * 10**6, "day": 86400 * 10**6, "week": 7 * 86400 * 10**6}.get(unit)
        if scale is None:
            raise NotSupported(f"an interval of {unit}s")
        return exp.Literal.number(int(n * scale))
    raise NotSupported(f"the interval {e.sql('duckdb')}")


def time_bucket(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`time_bucket(width, t)`: ClickHouse's toStartOfInterval counts from another origin (the epoch,
    where DuckDB counts from Monday 2000-01-03) and returns seconds. Written as arithmetic on microseconds
    from DuckDB's origin, floor division, back to DateTime64(6, 'UTC')."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.DateBin):
            return node
        if node.args.get("zone") or node.args.get("origin"):
            raise NotSupported("time_bucket with an origin or a time zone")
        w = _interval_us(node.this, ctx)
        o = _EPOCH_MONDAY_US
        # floor division on integers: intDiv truncates toward zero, so times before the origin step down one
        return template(
            f"fromUnixTimestamp64Micro((intDiv(toUnixTimestamp64Micro(__t__) - {o}, __w__) - "
            f"if(toUnixTimestamp64Micro(__t__) < {o} AND (toUnixTimestamp64Micro(__t__) - {o}) % __w__ != 0, 1, 0)"
            f") * __w__ + {o}, 'UTC')", t=node.expression, w=w)

    return tree.transform(fix, copy=False)


_TRUNC = {"day": "toStartOfDay", "hour": "toStartOfHour", "minute": "toStartOfMinute", "week": "toMonday",
          "month": "toStartOfMonth"}


def date_trunc(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`date_trunc('day', t)`: ClickHouse's toStartOfDay returns seconds (DateTime); cast back to the
    microsecond UTC time DuckDB returns for TIMESTAMPTZ."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
            return node
        unit_node = node.args.get("unit")
        if isinstance(unit_node, exp.Placeholder) or (isinstance(unit_node, exp.Column) and unit_node.name in ctx.values):
            # a unit bound as a parameter (`date_trunc(?, t)`): one of a fixed few words, chosen here
            unit = str(ctx.values.get(unit_node.name, "")).lower()
            used_param = unit_node.name
        else:
            unit = node.unit.name.lower() if node.unit else ""
            used_param = None
        fn = _TRUNC.get(unit)
        if fn is None:
            raise NotSupported(f"date_trunc('{unit}', ...)")
        if used_param is not None:
            ctx.inlined.add(used_param)
        return template(f"toDateTime64({fn}(__t__, 'UTC'), 6, 'UTC')", t=node.this)

    return tree.transform(fix, copy=False)


def _quantile(name: str, qs: list[exp.Expr], x: exp.Expr) -> exp.Expr:
    for q in qs:
        if not isinstance(q, exp.Literal):
            raise NotSupported("a quantile that is not a number in the statement")
    return exp.ParameterizedAgg(this=name, expressions=[q.copy() for q in qs], params=[x.copy()])


def quantiles(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`quantile_cont(x, q)` / `quantile_cont(x, [q...])` / `median(x)`: ClickHouse's `quantile` and `median`
    sample 8,192 values; the exact interpolating ones are quantileExactInclusive / quantilesExactInclusive
    (type 7, as DuckDB)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Median):
            return _quantile("quantileExactInclusive", [exp.Literal.number(0.5)], node.this)
        if isinstance(node, exp.PercentileDisc | exp.ApproxQuantile):
            raise NotSupported(f"{node.key}")
        if not isinstance(node, exp.PercentileCont):
            return node
        x, q = node.this, node.expression
        if isinstance(q, exp.Array):
            return _quantile("quantilesExactInclusive", list(q.expressions), x)
        return _quantile("quantileExactInclusive", [q], x)

    return tree.transform(fix, copy=False)


def lists_and_joins(node: exp.Expr, ordered: str, plain: str, joined: str,
                    make: Callable[..., exp.Expr] | None = None) -> exp.Expr | None:
    """`list(x ORDER BY k)`, `list(x)` and `string_agg(DISTINCT t, sep ORDER BY t)` in another engine's forms
    (templates: `ordered` of __k__ and __x__, `plain` of __x__, `joined` of __v__ and __s__), keeping the order
    and the NULLs; None for any other node. What has no such form is refused. `make`: the engine's template
    function (this module's, for ClickHouse, by default)."""
    make = make or template
    if isinstance(node, exp.ArrayAgg):
        inner = node.this
        if isinstance(inner, exp.Order):
            if len(inner.expressions) != 1 or inner.expressions[0].args.get("desc"):
                raise NotSupported("list(... ORDER BY) on more than one key or descending")
            return make(ordered, k=inner.expressions[0].this, x=inner.this)
        if isinstance(inner, exp.Distinct):
            raise NotSupported("list(DISTINCT ...)")
        return make(plain, x=inner)
    if isinstance(node, exp.GroupConcat):
        inner = node.this
        sep = node.args.get("separator")
        if isinstance(inner, exp.Order):
            d = inner.this
            if not isinstance(d, exp.Distinct) or len(inner.expressions) != 1 or \
                    inner.expressions[0].this.sql() != d.expressions[0].sql():
                raise NotSupported("string_agg ordered by another expression than its value")
            return make(joined, v=d.expressions[0], s=sep if sep is not None else exp.Literal.string(","))
        raise NotSupported("string_agg without DISTINCT ... ORDER BY its value (the order would differ)")
    return None


def aggregates(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`bool_or` / `bool_and` are max / min of the boolean; `list(x ORDER BY k)` keeps its order and its
    NULLs (groupArray skips NULLs, so each value travels in a tuple with its key); `string_agg(DISTINCT t,
    sep ORDER BY t)` is the sorted distinct values joined."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
            return exp.Anonymous(this="any", expressions=[node.this.this])
        if isinstance(node, exp.AnyValue):
            return exp.Anonymous(this="any", expressions=[node.this])  # skips NULLs, as any_value
        if isinstance(node, exp.LogicalOr):
            return exp.Max(this=node.this)
        if isinstance(node, exp.LogicalAnd):
            return exp.Min(this=node.this)
        done = lists_and_joins(node, "arrayMap(p -> p.2, arraySort(p -> p.1, groupArray(tuple(__k__, __x__))))",
                               "arrayMap(p -> p.1, groupArray(tuple(__x__)))",
                               "arrayStringConcat(arraySort(groupUniqArray(__v__)), __s__)")
        if done is not None:
            return done
        return node

    return tree.transform(fix, copy=False)


def text_functions(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`left`, `length`, `substring` count characters in DuckDB, bytes in ClickHouse: their UTF-8 forms.
    DuckDB's `strlen` counts bytes: ClickHouse's `length`."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "strlen" and len(node.expressions) == 1:
            out = exp.Anonymous(this="length", expressions=list(node.expressions))
            out.meta["agentlens_rule"] = True
            return out
        if isinstance(node, exp.Left):
            return exp.Anonymous(this="leftUTF8", expressions=[node.this, node.expression])
        if isinstance(node, exp.Length):
            return exp.Anonymous(this="lengthUTF8", expressions=[node.this])
        if isinstance(node, exp.Substring):
            args = [node.this, node.args.get("start") or exp.Literal.number(1)]
            if node.args.get("length") is not None:
                args.append(node.args["length"])
            return exp.Anonymous(this="substringUTF8", expressions=args)
        return node

    return tree.transform(fix, copy=False)


def _bound_path(ctx: Ctx, name: str) -> exp.Expr:
    """A JSON path bound as a parameter, read as sqlglot reads a literal one (its keys are then written as
    ClickHouse string literals, escaped); the parameter is bound no more."""
    text = str(ctx.values[name])
    try:
        read = sqlglot.parse_one("SELECT json_extract_string(x, '" + text.replace("'", "''") + "')", read="duckdb")
    except sqlglot.errors.SqlglotError:
        raise NotSupported(f"the JSON path {text!r}") from None
    node = read.expressions[0] if isinstance(read, exp.Select) and read.expressions else None
    path = node.expression if isinstance(node, exp.JSONExtractScalar) else None
    if not isinstance(path, exp.JSONPath):
        raise NotSupported(f"the JSON path {text!r}")
    ctx.inlined.add(name)
    return path


def json_functions(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`json_extract_string(j, '$.a')` / `j->>'$.a'`: ClickHouse's JSONExtractString gives '' for a missing key
    where DuckDB gives NULL; written so that a missing key or a JSON null is NULL, a string its text and any
    other value its JSON text (as DuckDB)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.JSONExtractScalar):
            return node
        path = node.expression
        if isinstance(path, exp.Placeholder) and isinstance(ctx.values.get(path.name), str):
            path = _bound_path(ctx, path.name)  # `attr:KEY`, `json:$.PATH` dimensions bind their path
        if not isinstance(path, exp.JSONPath):
            raise NotSupported("json_extract_string with a path that is not a literal")
        keys = []
        for part in path.expressions:
            if isinstance(part, exp.JSONPathRoot):
                continue
            if isinstance(part, exp.JSONPathKey):
                keys.append("'" + str(part.this).replace("\\", "\\\\").replace("'", "\\'") + "'")
            elif isinstance(part, exp.JSONPathSubscript) and isinstance(part.this, int):
                keys.append(str(part.this + 1))
            else:
                raise NotSupported(f"the JSON path {path.sql('duckdb')}")
        if not keys:
            raise NotSupported("the JSON path '$'")
        k = ", ".join(keys)
        return template(
            f"multiIf(NOT JSONHas(__j__, {k}) OR JSONType(__j__, {k}) = 'Null', NULL, JSONType(__j__, {k}) = 'String', "
            f"JSONExtractString(__j__, {k}), JSONExtractRaw(__j__, {k}))", j=node.this.transform(fix, copy=False))

    return tree.transform(fix, copy=False)


def structs(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """A struct literal `{a: x, b: y}` turned into JSON (`to_json(...)`, `...::JSON`): a tuple cast to named
    Dynamic fields, then toJSONString (keeps NULL fields, as DuckDB). A struct used any other way is refused."""

    def obj(struct: exp.Struct, slots: dict[str, exp.Expr]) -> str:
        names, vals = [], []
        for e in struct.expressions:
            if not isinstance(e, exp.PropertyEQ):
                raise NotSupported("a struct literal without field names")
            v = e.expression
            names.append(e.this.name)
            if isinstance(v, exp.Struct):
                vals.append(obj(v, slots))
            else:
                slot = f"s{len(slots)}"
                slots[slot] = v
                vals.append(f"__{slot}__")
        fields = ", ".join(f"`{n}` Dynamic" for n in names)
        return f"CAST(tuple({', '.join(vals)}), 'Tuple({fields})')"

    def fix(node: exp.Expr) -> exp.Expr:
        inner = None
        if isinstance(node, exp.JSONFormat | exp.Anonymous) and node.name.lower() in ("to_json", "") \
                and isinstance(node.this, exp.Struct):
            inner = node.this
        elif isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.JSON and isinstance(node.this, exp.Struct):
            inner = node.this
        if inner is None:
            return node
        slots: dict[str, exp.Expr] = {}
        text = obj(inner, slots)
        return template(f"toJSONString({text})", **slots)

    tree = tree.transform(fix, copy=False)
    for st in tree.find_all(exp.Struct):
        if not st.meta.get("agentlens_rule") and any(isinstance(e, exp.PropertyEQ) for e in st.expressions):
            raise NotSupported("a struct literal not turned into JSON")
    return tree


def column_names(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """A selected `s.bucket` is named `bucket` in DuckDB, `s.bucket` in ClickHouse: aliased to its name (a
    name already taken in that list gets DuckDB's `_1`, `_2` ...)."""
    for sel in tree.find_all(exp.Select):
        taken = {e.alias_or_name for e in sel.expressions if not (isinstance(e, exp.Column) and e.table)}
        for i, e in enumerate(sel.expressions):
            if isinstance(e, exp.Column) and e.table and not isinstance(e.this, exp.Star):
                name, n = e.name, 0
                while name in taken:
                    n += 1
                    name = f"{e.name}_{n}"
                taken.add(name)
                sel.expressions[i] = exp.alias_(e, name, quoted=True)
    return tree


def order_by_alias(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """With prefer_column_name_to_alias (needed so an alias does not capture a same-named column), ORDER BY
    a select alias reads the column instead: ORDER BY an alias that is not a plain column becomes its
    expression."""
    for sel in list(tree.find_all(exp.Select)):
        order = sel.args.get("order")
        if order is None:
            continue
        aliases = {s.alias: s.this for s in sel.expressions if isinstance(s, exp.Alias)}
        for o in order.expressions:
            c = o.this
            if isinstance(c, exp.Column) and not c.table and c.name in aliases:
                target = aliases[c.name]
                if not (isinstance(target, exp.Column) and target.name == c.name):
                    o.set("this", target.copy())
    return tree


def late_rows(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """A page of runs (`SELECT ... FROM runs [WHERE w] ORDER BY o LIMIT n [OFFSET k]`: no join, grouping,
    window or DISTINCT). DuckDB sorts by the sort key and reads the other columns of the page's rows only;
    ClickHouse, reading the runs view with FINAL, reads every column of every run first (6 s instead of 0.3 s
    for `lens.runs(limit=50)` at 1M runs, bench/scale.py). The page's run ids are found first, from the sort
    key alone (`run_id IN (SELECT run_id ... ORDER BY o LIMIT n + k)`), then the page as written: the same
    rows (the ids of the first n + k rows in that order, of which the page is the last n)."""
    for sel in list(tree.find_all(exp.Select)):
        src = sel.args.get("from_") or sel.args.get("from")
        limit, order = sel.args.get("limit"), sel.args.get("order")
        if src is None or limit is None or order is None or not isinstance(src.this, exp.Table) \
                or src.this.name != "runs" or src.this.args.get("db"):
            continue
        if any(sel.args.get(k) for k in ("joins", "group", "having", "distinct", "qualify", "laterals")):
            continue
        if any(isinstance(n, exp.AggFunc | exp.Window) for e in sel.expressions for n in e.walk()):
            continue
        if not isinstance(limit, exp.Limit) or limit.expression is None:
            continue
        alias = src.this.alias_or_name
        n: exp.Expr = limit.expression.copy()
        offset = sel.args.get("offset")
        if offset is not None:
            n = exp.Add(this=n, expression=offset.expression.copy())
        inner = exp.Select(expressions=[exp.column("run_id", table=alias)])
        inner.set("from_", exp.From(this=src.this.copy()))
        where = sel.args.get("where")
        if where is not None:
            inner.set("where", where.copy())
        inner.set("order", order.copy())
        inner.set("limit", exp.Limit(expression=n))
        cond = exp.In(this=exp.column("run_id", table=alias), query=exp.Subquery(this=inner))
        sel.set("where", exp.Where(this=exp.and_(where.this, cond) if where is not None else cond))
    return tree


def casts(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """Casts to ClickHouse's types (sqlglot writes TIMESTAMPTZ as DateTime, in seconds): microsecond UTC
    times, Nullable throughout as DuckDB's casts keep NULL; a cast of a bound value types the parameter."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Cast | exp.TryCast):
            return node
        if isinstance(node, exp.TryCast):
            raise NotSupported("TRY_CAST")
        to = node.to
        if to.this == exp.DataType.Type.INTERVAL:
            raise NotSupported("a cast to INTERVAL outside time_bucket")
        if to.this == exp.DataType.Type.USERDEFINED:
            raise NotSupported(f"a cast to {to.sql('duckdb')}")
        t = _type_of(to)
        if isinstance(node.this, exp.Placeholder):
            name = node.this.name
            v = ctx.values.get(name)
            if v is None and t.startswith("Array("):
                # ClickHouse has no NULL array: a list bound as NULL is a NULL of no type, and functions
                # of it are NULL (`?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], x)` reads the same)
                ctx.inlined.add(name)
                return exp.Null()
            if name not in ctx.types:
                if isinstance(v, list | tuple):
                    ctx.types[name] = t
                else:
                    ctx.types[name] = _nullable(t)
            return exp.Placeholder(this=name)
        return exp.Cast(this=node.this, to=_ch(_nullable(t)))

    return tree.transform(fix, copy=False)


def regexp_extract(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`regexp_extract(s, p[, g])`: both give '' without a match; ClickHouse's group defaults to 1 where
    DuckDB's is 0 (the whole match), so the group is always written."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.RegexpExtract):
            return node
        if node.args.get("position") or node.args.get("occurrence") or node.args.get("parameters"):
            raise NotSupported("regexp_extract with options")
        group = node.args.get("group") or exp.Literal.number(0)
        return exp.Anonymous(this="regexpExtract", expressions=[node.this, node.expression, group])

    return tree.transform(fix, copy=False)


def map_entries(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`unnest(map_entries(m)) AS e` with `e.key` / `e.value`: arrayJoin over the map's (key, value) pairs as
    a named tuple, whose fields read the same."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Explode) and isinstance(node.this, exp.Anonymous) and \
                node.this.name.lower() == "map_entries" and len(node.this.expressions) == 1:
            m = node.this.expressions[0]
            return template("arrayJoin(CAST(arrayZip(mapKeys(__m__), mapValues(__m__)), "
                            "'Array(Tuple(key Int32, value UInt64))'))", m=m)
        return node

    return tree.transform(fix, copy=False)


def outer_join_keys(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """A join whose ON has no equality between its sides (`LEFT JOIN ev ON ev.ts >= w.lo AND ev.ts < w.hi`)
    is refused by ClickHouse, and `LEFT JOIN q ON true` silently gives one row instead of the product: both
    sides get a constant key, equal on every row (the same rows match as in DuckDB)."""
    for sel in list(tree.find_all(exp.Select)):
        for j in sel.args.get("joins") or []:
            on = j.args.get("on")
            if on is None:
                continue
            if any(isinstance(eq.left, exp.Column) and isinstance(eq.right, exp.Column)
                   and eq.left.table != eq.right.table for eq in on.find_all(exp.EQ)):
                continue
            left = sel.args["from_"].this if sel.args.get("from_") else None
            right = j.this
            if not isinstance(left, exp.Table | exp.Subquery) or not isinstance(right, exp.Table | exp.Subquery) \
                    or not (left.alias or isinstance(left, exp.Table)) or not (right.alias or isinstance(right, exp.Table)):
                raise NotSupported("a join without an equality, of anything but tables and named subqueries")
            k = ctx.name("k")
            la, ra = left.alias_or_name, right.alias_or_name
            for t, alias in ((left, la), (right, ra)):
                if isinstance(t, exp.Table):
                    sub = sqlglot.parse_one(f"SELECT *, 1 AS {k} FROM `{t.name}`", read="clickhouse")  # noqa: S608 - a name of the statement
                    t.replace(exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(alias))))
                else:
                    inner = t.this
                    if not isinstance(inner, exp.Select):
                        raise NotSupported("a join without an equality on a set operation")
                    inner.select(exp.alias_(exp.Literal.number(1), k), copy=False)
            key = exp.EQ(this=exp.column(k, la), expression=exp.column(k, ra))
            j.set("on", key if isinstance(on, exp.Boolean) and on.this else exp.and_(key, on))
    return tree


def counts(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`count(...)` is a BIGINT in DuckDB, a UInt64 in ClickHouse: cast, so both give the same column type."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Count) and not isinstance(node.parent, exp.Cast):
            return exp.Cast(this=node, to=_ch("Int64"))
        if isinstance(node, exp.Filter) and isinstance(node.this, exp.Count) and not isinstance(node.parent, exp.Cast):
            return exp.Cast(this=node, to=_ch("Int64"))
        return node

    return tree.transform(fix, copy=False)


def rounding(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`round(x, n)` rounds half away from zero in DuckDB (std::round of x * 10^n); ClickHouse's round of a
    float rounds half to even (round(2.5) = 2, round(0.0064103245, 9) = 0.006410324): written as DuckDB
    computes it."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Round):
            return node
        n = node.args.get("decimals")
        digits = 0 if n is None else int(n.this) if isinstance(n, exp.Literal) and not n.is_string else None
        if digits is None:
            raise NotSupported("round to a number of digits that is not a number in the statement")
        m = f"{10 ** digits}" if digits >= 0 else f"{10.0 ** digits!r}"
        return template(f"sign(__x__) * floor(abs(__x__) * {m} + 0.5) / {m}", x=node.this)

    return tree.transform(fix, copy=False)


def strftime(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`strftime(t, fmt)` with the date and time codes both engines read alike (%Y %m %d %H %M %S)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.TimeToStr):
            fmt = node.args.get("format")
            if not isinstance(fmt, exp.Literal) or set(re.findall(r"%.", fmt.this)) - {"%Y", "%m", "%d", "%H", "%M", "%S"}:
                raise NotSupported("strftime with other codes than %Y %m %d %H %M %S")
            return exp.Anonymous(this="formatDateTime", expressions=[node.this, fmt, exp.Literal.string("UTC")])
        return node

    return tree.transform(fix, copy=False)


def utc(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`t AT TIME ZONE 'UTC'`: every time is UTC on ClickHouse (session_timezone and the column types): the
    same instant. Another zone is refused."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.AtTimeZone):
            zone = node.args.get("zone")
            if not (isinstance(zone, exp.Literal) and zone.this.upper() in ("UTC", "GMT")):
                raise NotSupported("AT TIME ZONE another zone than UTC")
            return node.this
        return node

    return tree.transform(fix, copy=False)


def list_position(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`list_position(list, x)` is NULL when x is not there; ClickHouse's indexOf gives 0. `list_contains(l, x)`
    is has(l, x); `contains(s, t)` (a substring) is position(s, t) > 0."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.ArrayContains):
            lst = node.this
            if isinstance(lst, exp.Cast) and isinstance(lst.this, exp.Placeholder) and ctx.values.get(lst.this.name) is None:
                return exp.Null()  # of a list bound as NULL (ClickHouse has no NULL arrays): NULL, as in DuckDB
            return template("has(__l__, __x__)", l=node.this, x=node.expression)
        if isinstance(node, exp.Contains):
            return template("position(__s__, __t__) > 0", s=node.this, t=node.expression)
        if isinstance(node, exp.Anonymous) and node.name.lower() in ("list_position", "list_indexof", "array_position"):
            return template("nullIf(indexOf(__l__, __x__), 0)", l=node.expressions[0], x=node.expressions[1])
        if isinstance(node, exp.ArrayPosition):
            return template("nullIf(indexOf(__l__, __x__), 0)", l=node.this, x=node.expression)
        return node

    return tree.transform(fix, copy=False)


def catalog(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`duckdb_tables()` (is there a table of this name?): ClickHouse's system.tables of this database, with
    DuckDB's column names; the contract tables are views there, found the same."""
    for t in list(tree.find_all(exp.Table)):
        fn = t.this
        if isinstance(fn, exp.Anonymous) and fn.name.lower() == "duckdb_tables":
            sub = sqlglot.parse_one("SELECT name AS table_name, 'main' AS schema_name FROM system.tables "
                                    "WHERE database = currentDatabase()", read="clickhouse")
            for node in sub.walk():
                node.meta["agentlens_rule"] = True
            t.replace(exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(t.alias or "duckdb_tables"))))
    return tree


def information_schema(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`current_schema()` is ClickHouse's currentDatabase() (information_schema.tables exists on both)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.CurrentSchema) or (isinstance(node, exp.Anonymous) and node.name.lower() == "current_schema"):
            return exp.Anonymous(this="currentDatabase", expressions=[])
        return node

    return tree.transform(fix, copy=False)


def unnest(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`unnest(list)` in a select list is arrayJoin."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Explode) and not node.meta.get("agentlens_rule"):
            return exp.Anonymous(this="arrayJoin", expressions=[node.this])
        if isinstance(node, exp.Unnest):
            raise NotSupported("unnest in FROM")
        return node

    return tree.transform(fix, copy=False)


def interval_functions(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`to_seconds(n)` is toIntervalSecond(n); `epoch_us(t)` of a time (DateTime64(6) here) is
    toUnixTimestamp64Micro(t)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "to_seconds":
            return exp.Anonymous(this="toIntervalSecond", expressions=node.expressions)
        if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us" and len(node.expressions) == 1:
            return exp.Anonymous(this="toUnixTimestamp64Micro", expressions=node.expressions)
        return node

    return tree.transform(fix, copy=False)


# Function and operator nodes sqlglot writes for ClickHouse with the same meaning (each appears in the
# conformance suite); anything else is refused.
SAME: tuple[type[exp.Expr], ...] = (
    exp.Count, exp.Sum, exp.Min, exp.Max, exp.Avg, exp.Coalesce, exp.If, exp.Case, exp.ArgMin, exp.ArgMax,
    exp.RegexpLike, exp.Greatest, exp.Least, exp.Abs, exp.Floor, exp.Ceil, exp.Lower, exp.Upper,
    exp.CurrentTimestamp, exp.Nullif, exp.Concat, exp.DPipe, exp.Filter, exp.Window, exp.RowNumber, exp.Rank,
    exp.DenseRank, exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.Array, exp.Bracket, exp.Tuple,
    exp.Distinct, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.Exists, exp.In, exp.Ln, exp.Exp,
    exp.Pow, exp.Sqrt, exp.StrPosition, exp.Trim, exp.Cast, exp.Extract, exp.Sign, exp.AnyValue,
)
_RULED = ("arrayMap", "arraySort", "groupArray", "arrayStringConcat", "groupUniqArray", "quantileExactInclusive",
          "quantilesExactInclusive", "fromUnixTimestamp64Micro", "toUnixTimestamp64Micro", "toInt64", "floor",
          "toDateTime64", "toStartOfDay", "toStartOfHour", "toStartOfMinute", "toMonday", "toStartOfMonth",
          "leftUTF8", "lengthUTF8", "substringUTF8", "JSONHas", "JSONType", "JSONExtractString", "JSONExtractRaw",
          "multiIf", "toJSONString", "tuple", "tupleElement", "currentDatabase", "arrayJoin", "toIntervalSecond",
          "intDiv", "regexpExtract", "any", "sign", "abs", "arrayZip", "mapKeys", "mapValues", "formatDateTime")


def refuse_unknown(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """Last: a function no rule rewrote and not known to mean the same on both engines is refused."""
    for node in tree.find_all(exp.Func):
        if isinstance(node, exp.Connector | exp.Binary | exp.Unary | exp.ParameterizedAgg) or \
                node.meta.get("agentlens_rule"):
            continue
        if isinstance(node, exp.Anonymous):
            if node.name in _RULED:
                continue
            raise NotSupported(f"the function {node.name}()")
        if isinstance(node, SAME) or type(node).__name__ in ("Lambda",):
            continue
        if isinstance(node, exp.AggFunc | exp.Func) and node.sql("clickhouse").split("(")[0] in _RULED:
            continue
        raise NotSupported(f"{node.sql('duckdb')[:60]!r} ({type(node).__name__})")
    for col in tree.find_all(exp.Column):
        if col.name == "rowid":
            raise NotSupported("rowid")
    return tree


RULES: tuple[Rule, ...] = (
    rename_tables,
    qualify_stars,
    union_by_name,
    utc,
    unpivot,
    time_bucket,
    date_trunc,
    quantiles,
    aggregates,
    text_functions,
    json_functions,
    structs,
    catalog,
    rounding,
    strftime,
    list_position,
    regexp_extract,
    map_entries,
    unnest,
    interval_functions,
    outer_join_keys,
    information_schema,
    column_names,
    order_by_alias,
    late_rows,
    casts,
    counts,
    refuse_unknown,
)


def contract_tables() -> dict[str, dict[str, str]]:
    return {t: {c.name: c.type for c in cols} for t, cols in schema.TABLES.items()}


@dataclass(frozen=True)
class Translated:
    sql: str
    params: dict[str, Any]
    tree: exp.Expr


def parse(sql: str) -> tuple[exp.Expr, int]:
    text, n = number_positional(sql)
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except sqlglot.errors.SqlglotError as e:
        raise NotSupported(f"sqlglot cannot read it: {str(e).splitlines()[0]}") from None
    if len(trees) != 1:
        raise NotSupported("several statements in one")
    return cast(exp.Expr, trees[0]), n


def translate(sql: str, params: Any = None, tables: Mapping[str, Mapping[str, str]] | None = None,
              renames: Mapping[str, str] | None = None, tree: exp.Expr | None = None,
              positional: int = 0) -> Translated:
    """The statement (a query) and its values for ClickHouse. Raises NotSupported for what has no known
    translation. `renames`: tables of this connection by their name on ClickHouse."""
    if tree is None:
        tree, positional = parse(sql)
    values = bind(params, positional)
    ctx = Ctx(values, tables if tables is not None else contract_tables(), renames or {})
    if not isinstance(tree, exp.Query):
        raise NotSupported(f"{tree.key.upper()} statements (only queries run on ClickHouse)")
    for rule in RULES:
        tree = rule(tree, ctx)
    used = {p.name for p in tree.find_all(exp.Placeholder)} - ctx.inlined
    for p in tree.find_all(exp.Placeholder):
        name = p.name
        if name not in values:
            raise NotSupported(f"no value for ${name}")
        t = ctx.types.get(name) or _nullable(param_type(values[name]))
        p.set("kind", _ch(t))
    out = tree.sql("clickhouse")
    return Translated(out, {k: param_value(v) for k, v in values.items() if k in used}, tree)
