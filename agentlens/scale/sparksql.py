"""The metric SQL, written once in DuckDB's dialect, as Spark SQL: sqlglot parses it, agentlens's rules rewrite
what sqlglot's spark dialect alone gets wrong (several silently: the SQL would run and answer differently), and
sqlglot writes it for Spark.

The same machinery as the ClickHouse translation (translate.py): plain functions of the parsed statement in
an ordered list (`RULES`), each for one difference measured between the engines (docs/scale-out.md, Spark,
lists them), the generic ones shared (`rename_tables`, `qualify_stars`, `union_by_name`, `utc`). A construct
no rule knows and that is not known to mean the same on both engines (`SAME`) is refused (`NotSupported`).

Values stay bound: DuckDB's `$name` and `?` parameters become Spark's named parameter markers `:name`, their
values handed to `spark.sql(sql, args=...)`; times are bound as UTC text and cast (the session's time zone is
UTC), intervals as microseconds (the rules that take one read it so).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, cast

import sqlglot
from sqlglot import exp

from . import translate as tr
from .translate import Ctx, NotSupported, Rule, Translated, bind, lists_and_joins, parse

_EPOCH_MONDAY_US = tr._EPOCH_MONDAY_US  # 2000-01-03 00:00:00 UTC: the origin of DuckDB's time_bucket


def template(sql: str, **nodes: exp.Expr) -> exp.Expr:
    """Spark SQL with slots `__name__` filled by the given expressions (copies)."""
    tree = sqlglot.parse_one(sql, read="spark")
    for node in tree.walk():
        node.meta["agentlens_rule"] = True

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("__") and \
                node.name.endswith("__") and node.name[2:-2] in nodes:
            return nodes[node.name[2:-2]].copy()
        return node

    return tree.transform(fill, copy=False)


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    out = exp.Anonymous(this=name, expressions=list(args))
    out.meta["agentlens_rule"] = True
    return out


# ---------------------------------------------------------------------------------------------------------
# The rules, in order.


def time_bucket(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`time_bucket(width, t)`: Spark has none (sqlglot writes DATE_BIN, which Spark lacks). Arithmetic on
    microseconds from DuckDB's origin (Monday 2000-01-03), floored with pmod, back to a timestamp."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.DateBin):
            return node
        if node.args.get("zone") or node.args.get("origin"):
            raise NotSupported("time_bucket with an origin or a time zone")
        w = tr._interval_us(node.this, ctx)
        o = _EPOCH_MONDAY_US
        return template(f"timestamp_micros((unix_micros(__t__) - {o}) - pmod(unix_micros(__t__) - {o}, __w__) + {o})",
                        t=node.expression, w=w)

    return tree.transform(fix, copy=False)


def date_trunc(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`date_trunc(unit, t)`: Spark's date_trunc of a timestamp means the same in a UTC session; a unit bound
    as a parameter is read from it (one of a fixed few words)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
            return node
        unit_node = node.args.get("unit")
        if isinstance(unit_node, exp.Placeholder) or (isinstance(unit_node, exp.Column) and unit_node.name in ctx.values):
            unit = str(ctx.values.get(unit_node.name, "")).lower()
            ctx.inlined.add(unit_node.name)
        else:
            unit = node.unit.name.lower() if node.unit else ""
        if unit not in ("day", "hour", "minute", "week", "month"):
            raise NotSupported(f"date_trunc('{unit}', ...)")
        return _fn("date_trunc", exp.Literal.string(unit.upper()), node.this)

    return tree.transform(fix, copy=False)


def quantiles(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`quantile_cont(x, q)` / `quantile_cont(x, [q...])` / `median(x)`: Spark's `percentile` is exact and
    interpolates as DuckDB's (sqlglot writes PERCENTILE_CONT(x, q), which Spark reads otherwise)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Median):
            return _fn("percentile", node.this, exp.Literal.number(0.5))
        if isinstance(node, exp.PercentileDisc | exp.ApproxQuantile):
            raise NotSupported(f"{node.key}")
        if not isinstance(node, exp.PercentileCont):
            return node
        x, q = node.this, node.expression
        qs = list(q.expressions) if isinstance(q, exp.Array) else [q]
        if not all(isinstance(v, exp.Literal) for v in qs):
            raise NotSupported("a quantile that is not a number in the statement")
        arg = _fn("array", *qs) if isinstance(q, exp.Array) else q
        return _fn("percentile", x, arg)

    return tree.transform(fix, copy=False)


def aggregates(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`list(x ORDER BY k)`: sqlglot writes COLLECT_LIST(x), dropping the ORDER BY (and collect_list skips
    NULLs): structs of (k, x) collected, sorted, their x taken. `any_value` skips NULLs in DuckDB (Spark's
    only when told). `string_agg(DISTINCT t, sep ORDER BY t)`: the sorted distinct values joined."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
            return _fn("first", node.this.this, exp.true())
        if isinstance(node, exp.AnyValue):
            return _fn("first", node.this, exp.true())
        done = lists_and_joins(node, "transform(array_sort(collect_list(named_struct('k', __k__, 'v', __x__))), p -> p.v)",
                               "transform(collect_list(named_struct('v', __x__)), p -> p.v)",
                               "array_join(array_sort(collect_set(__v__)), __s__)", template)
        if done is not None:
            return done
        return node

    return tree.transform(fix, copy=False)


def text_functions(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """DuckDB's `strlen` counts bytes: Spark's octet_length (`left`, `length`, `substring` count characters
    on both)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "strlen" and len(node.expressions) == 1:
            return _fn("octet_length", node.expressions[0])
        return node

    return tree.transform(fix, copy=False)


def _spark_path(path: exp.JSONPath) -> str:
    out = "$"
    for part in path.expressions:
        if isinstance(part, exp.JSONPathRoot):
            continue
        if isinstance(part, exp.JSONPathKey) and isinstance(part.this, str):
            key = part.this
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                out += "." + key
            elif "'" in key or "]" in key:
                raise NotSupported(f"the JSON key {key!r}")
            else:
                out += f"['{key}']"
        elif isinstance(part, exp.JSONPathSubscript) and isinstance(part.this, int):
            out += f"[{part.this}]"
        else:
            raise NotSupported(f"the JSON path {path.sql('duckdb')}")
    if out == "$":
        raise NotSupported("the JSON path '$'")
    return out


def json_functions(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`json_extract_string(j, '$.a')` / `j->>'$.a'`: Spark's get_json_object (NULL for a missing key or a JSON
    null, a string's text, any other value's JSON). The path is written as Spark reads one (a key with dots
    or spaces as `['...']`); a path bound as a parameter (`attr:KEY`, `json:$.PATH` dimensions) is read and
    written so, and bound no more."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.JSONExtractScalar):
            return node
        path = node.expression
        if isinstance(path, exp.Placeholder) and isinstance(ctx.values.get(path.name), str):
            path = tr._bound_path(ctx, path.name)
        if not isinstance(path, exp.JSONPath):
            raise NotSupported("json_extract_string with a path that is not a literal")
        return _fn("get_json_object", node.this.transform(fix, copy=False), exp.Literal.string(_spark_path(path)))

    return tree.transform(fix, copy=False)


def structs(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """A struct literal `{a: x}` turned into JSON (`to_json(...)`, `...::JSON`): Spark's to_json drops NULL
    fields unless told (`ignoreNullFields` false); named_struct keeps DuckDB's field order."""

    def obj(struct: exp.Struct) -> exp.Expr:
        args: list[exp.Expr] = []
        for e in struct.expressions:
            if not isinstance(e, exp.PropertyEQ):
                raise NotSupported("a struct literal without field names")
            v = e.expression
            args += [exp.Literal.string(e.this.name), obj(v) if isinstance(v, exp.Struct) else v]
        return _fn("named_struct", *args)

    def fix(node: exp.Expr) -> exp.Expr:
        inner = None
        if isinstance(node, exp.JSONFormat) and isinstance(node.this, exp.Struct):
            inner = node.this
        elif isinstance(node, exp.Anonymous) and node.name.lower() == "to_json" and len(node.expressions) == 1 \
                and isinstance(node.expressions[0], exp.Struct):
            inner = node.expressions[0]
        elif isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.JSON and isinstance(node.this, exp.Struct):
            inner = node.this
        if inner is None:
            return node
        return template("to_json(__s__, map('ignoreNullFields', 'false'))", s=obj(inner))

    tree = tree.transform(fix, copy=False)
    for st in tree.find_all(exp.Struct):
        if not st.meta.get("agentlens_rule") and any(isinstance(e, exp.PropertyEQ) for e in st.expressions):
            raise NotSupported("a struct literal not turned into JSON")
    return tree


def catalog(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`duckdb_tables()` (is there a table of this name?): the tables this connection reads (the lake's and
    its own), as a list of rows; `information_schema.tables` with `current_schema()` the same."""
    rows = ", ".join(f"('{t}', 'main')" for t in sorted(ctx.tables) if re.fullmatch(r"[A-Za-z0-9_]+", t))
    for t in list(tree.find_all(exp.Table)):
        fn = t.this
        is_dt = isinstance(fn, exp.Anonymous) and fn.name.lower() == "duckdb_tables"
        is_is = t.name == "tables" and t.db == "information_schema"
        if not (is_dt or is_is):
            continue
        names = "table_name, schema_name" if is_dt else "table_name, table_schema"
        sub = sqlglot.parse_one(f"SELECT * FROM VALUES {rows} AS t({names})", read="spark")  # noqa: S608 - names of tables
        for node in sub.walk():
            node.meta["agentlens_rule"] = True
        t.replace(exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(t.alias or t.name))))

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.CurrentSchema) or (isinstance(node, exp.Anonymous) and node.name.lower() == "current_schema"):
            return exp.Literal.string("main")
        return node

    return tree.transform(fix, copy=False)


def rounding(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`round(x, n)`: DuckDB computes std::round(x * 10^n) / 10^n; Spark rounds the double's decimal
    expansion half up, which differs on values like 0.0064103245 (their binary form sits below the half):
    written as DuckDB computes it."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Round) or node.meta.get("agentlens_rule"):
            return node
        n = node.args.get("decimals")
        digits = 0 if n is None else int(n.this) if isinstance(n, exp.Literal) and not n.is_string else None
        if digits is None:
            raise NotSupported("round to a number of digits that is not a number in the statement")
        m = f"1E{digits}"  # a DOUBLE literal (Spark reads 0.5 as a DECIMAL)
        return template(f"sign(__x__) * floor(abs(__x__) * {m} + 5E-1) / {m}", x=node.this)

    return tree.transform(fix, copy=False)


def strftime(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`strftime(t, fmt)` with the codes %Y %m %d %H %M %S (sqlglot writes Spark's date_format patterns)."""
    for node in tree.find_all(exp.TimeToStr):
        fmt = node.args.get("format")
        if not isinstance(fmt, exp.Literal) or set(re.findall(r"%.", fmt.this)) - {"%Y", "%m", "%d", "%H", "%M", "%S"} \
                or re.search(r"[A-Za-z']", re.sub(r"%.", "", fmt.this)):
            raise NotSupported("strftime with other codes than %Y %m %d %H %M %S, or letters")
    return tree


def lists(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`xs[i]`: sqlglot shifts DuckDB's 1-based index to Spark's 0-based one, and turns `xs[-1]` (the last)
    into `xs[-2]`: written as element_at (1-based, negative from the end, NULL out of range) for a list.
    `list_position` is NULL when absent (Spark's array_position: 0); `list_contains` is array_contains;
    `epoch_us(t)` is unix_micros; `to_seconds(n)` an interval of n seconds (make_dt_interval)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Bracket) and len(node.expressions) == 1 and not node.meta.get("agentlens_rule"):
            i = node.expressions[0]
            # sqlglot keeps the index 0-based inside (DuckDB's 1 is 0, its -1 is -2): DuckDB's is that + 1
            if isinstance(i, exp.Neg) and isinstance(i.this, exp.Literal) and not i.this.is_string:
                return _fn("element_at", node.this, exp.Literal.number(1 - int(i.this.this)))
            if isinstance(i, exp.Literal) and not i.is_string:
                return _fn("element_at", node.this, exp.Literal.number(int(i.this) + 1))
            if not (isinstance(i, exp.Literal) and i.is_string):
                raise NotSupported(f"the subscript {node.sql('duckdb')}")
        if isinstance(node, exp.Anonymous) and node.name.lower() in ("list_position", "list_indexof", "array_position"):
            return template("nullif(array_position(__l__, __x__), 0)", l=node.expressions[0], x=node.expressions[1])
        if isinstance(node, exp.ArrayPosition):
            return template("nullif(array_position(__l__, __x__), 0)", l=node.this, x=node.expression)
        if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us" and len(node.expressions) == 1:
            return _fn("unix_micros", node.expressions[0])
        if isinstance(node, exp.Anonymous) and node.name.lower() == "to_seconds" and len(node.expressions) == 1:
            return _fn("make_dt_interval", *[exp.Literal.number(0)] * 3, node.expressions[0])
        return node

    return tree.transform(fix, copy=False)


def regexp_replace(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """`regexp_replace(s, p, r, 'g')` replaces every match (Spark's always does); without 'g' DuckDB replaces
    the first only: refused."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.RegexpReplace) or node.meta.get("agentlens_rule"):
            return node
        mods = node.args.get("modifiers")
        if not (isinstance(mods, exp.Literal) and mods.this == "g") or node.args.get("position") \
                or node.args.get("occurrence"):
            raise NotSupported("regexp_replace without 'g' (DuckDB replaces the first match only)")
        return _fn("regexp_replace", node.this, node.expression, node.args["replacement"])

    return tree.transform(fix, copy=False)


def shadowed_columns(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """An aggregate in ORDER BY (or HAVING) over a column that a select alias shadows (`arg_min(severity, ...)
    AS severity ... ORDER BY min(severity)`): DuckDB reads the table's column, Spark the alias (an aggregate of
    an aggregate, which it refuses). The column is qualified with its table's name."""
    for sel in list(tree.find_all(exp.Select)):
        aliases = {e.alias for e in sel.expressions if isinstance(e, exp.Alias)
                   and not (isinstance(e.this, exp.Column) and e.this.name == e.alias)}
        src = sel.args.get("from_")
        if not aliases or src is None:
            continue
        for key in ("order", "having"):
            part = sel.args.get(key)
            if part is None:
                continue
            for col in list(part.find_all(exp.Column)):
                if col.table or col.name not in aliases or col.find_ancestor(exp.AggFunc, exp.Select) is None \
                        or not isinstance(col.find_ancestor(exp.AggFunc, exp.Select), exp.AggFunc):
                    continue
                if sel.args.get("joins") or not isinstance(src.this, exp.Table | exp.Subquery) or not src.this.alias_or_name:
                    raise NotSupported("an aggregate in ORDER BY of a column an alias shadows, over a join")
                col.set("table", exp.to_identifier(src.this.alias_or_name))
    return tree


def duplicate_names(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """Two columns of a result with one name (`... {by} AS feature, r.feature`): DuckDB names the later ones
    `feature_1`, `feature_2` ...; Spark keeps both names (and polars refuses the frame). Aliased as DuckDB
    names them, in the statement's own result."""
    sel = tree if isinstance(tree, exp.Select) else None
    if sel is None:
        return tree
    taken: set[str] = set()
    for i, e in enumerate(list(sel.expressions)):
        name = e.alias_or_name
        if not name or name == "*":
            continue
        if name in taken:
            n = 1
            while f"{name}_{n}" in taken:
                n += 1
            sel.expressions[i] = exp.alias_(e.this if isinstance(e, exp.Alias) else e, f"{name}_{n}", quoted=True)
            name = f"{name}_{n}"
        taken.add(name)
    return tree


def casts(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """Casts to Spark's types: TIMESTAMPTZ is Spark's TIMESTAMP (an instant; the session's zone is UTC), JSON is
    text. A time bound as a parameter is UTC text cast to TIMESTAMP (see `bound_values`)."""

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.TryCast):
            raise NotSupported("TRY_CAST")
        if not isinstance(node, exp.Cast):
            return node
        to = node.to
        if to.this == exp.DataType.Type.INTERVAL:
            raise NotSupported("a cast to INTERVAL outside time_bucket")
        if to.this == exp.DataType.Type.USERDEFINED:
            raise NotSupported(f"a cast to {to.sql('duckdb')}")
        if to.this in (exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMP):
            node.set("to", exp.DataType.build("TIMESTAMP", dialect="spark"))
        elif to.this == exp.DataType.Type.JSON:
            node.set("to", exp.DataType.build("STRING", dialect="spark"))
        elif to.this == exp.DataType.Type.UBIGINT:
            node.set("to", exp.DataType.build("BIGINT", dialect="spark"))
        return node

    return tree.transform(fix, copy=False)


def bound_values(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """Parameters: a time (Python datetime) is bound as UTC text and cast to TIMESTAMP, so that no Python-side
    zone conversion touches it; a list bound as NULL is a NULL array of its cast's type."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Placeholder) or node.meta.get("agentlens_bound"):
            return node
        v = ctx.values.get(node.name)
        node.meta["agentlens_bound"] = True
        if isinstance(v, dt.datetime) and not (isinstance(node.parent, exp.Cast)
                                               and node.parent.to.this == exp.DataType.Type.TIMESTAMP):
            return exp.Cast(this=node, to=exp.DataType.build("TIMESTAMP", dialect="spark"))
        return node

    return tree.transform(fix, copy=False)


# Function and operator nodes sqlglot writes for Spark with the same meaning (each appears in the conformance
# suite); anything else is refused.
SAME: tuple[type[exp.Expr], ...] = (
    *tr.SAME,
    exp.ArgMin, exp.ArgMax, exp.LogicalOr, exp.LogicalAnd, exp.Left, exp.Length, exp.Substring, exp.TimeToStr,
    exp.RegexpExtract, exp.ArrayContains, exp.Contains, exp.Explode, exp.Round, exp.DateDiff, exp.Lambda,
    exp.ArrayFilter, exp.Transform, exp.Unnest, exp.AtTimeZone, exp.StrToTime, exp.ConvertTimezone,
)
_RULED = frozenset({"element_at", "array_position", "nullif", "transform", "array_sort", "collect_list", "named_struct",
                    "array_join", "collect_set", "first", "percentile", "array", "get_json_object", "to_json", "map",
                    "timestamp_micros", "unix_micros", "pmod", "date_trunc", "octet_length", "sign", "floor", "abs",
                    "map_entries", "regexp_replace", "make_dt_interval"})


def refuse_unknown(tree: exp.Expr, ctx: Ctx) -> exp.Expr:
    """Last: a function no rule wrote and not known to mean the same on both engines is refused."""
    for node in tree.find_all(exp.Func):
        if isinstance(node, exp.Connector | exp.Binary | exp.Unary) or node.meta.get("agentlens_rule"):
            continue
        if isinstance(node, exp.Anonymous):
            if node.name.lower() in _RULED:
                continue
            raise NotSupported(f"the function {node.name}()")
        if isinstance(node, SAME):
            continue
        raise NotSupported(f"{node.sql('duckdb')[:60]!r} ({type(node).__name__})")
    for col in tree.find_all(exp.Column):
        if col.name == "rowid":
            raise NotSupported("rowid")
    return tree


RULES: tuple[Rule, ...] = (
    tr.rename_tables,
    tr.qualify_stars,
    tr.union_by_name,
    tr.utc,
    shadowed_columns,
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
    lists,
    regexp_replace,
    duplicate_names,
    casts,
    bound_values,
    refuse_unknown,
)


def param_value(value: Any) -> Any:
    """A value as bound for Spark: times as UTC text (cast in the statement), the rest as Python gives it."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.timedelta):
        return value // dt.timedelta(microseconds=1)  # read so by the rules that take an interval (time_bucket)
    if isinstance(value, tuple):
        return list(value)
    return value


def translate(sql: str, params: Any = None, tables: Mapping[str, Mapping[str, str]] | None = None,
              renames: Mapping[str, str] | None = None, tree: exp.Expr | None = None,
              positional: int = 0) -> Translated:
    """The statement (a query) and its values for Spark (`spark.sql(t.sql, args=t.params)`). Raises
    NotSupported for what has no known translation."""
    if tree is None:
        tree, positional = parse(sql)
    values = bind(params, positional)
    ctx = Ctx(values, tables if tables is not None else tr.contract_tables(), renames or {})
    if not isinstance(tree, exp.Query):
        raise NotSupported(f"{tree.key.upper()} statements (only queries run on Spark)")
    for rule in RULES:
        tree = rule(tree, ctx)
    used = {p.name for p in tree.find_all(exp.Placeholder)} - ctx.inlined
    for name in used:
        if name not in values:
            raise NotSupported(f"no value for ${name}")
    out = cast(exp.Expr, tree).sql("spark")
    return Translated(out, {k: param_value(v) for k, v in values.items() if k in used}, tree)
