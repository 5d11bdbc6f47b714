"""Runs the Athena queries in queries/ on DuckDB over a local svr-etl sink.

    python3 tests/sql/athena_on_duckdb.py SINK_DIR QUERY.sql
    python3 tests/sql/athena_on_duckdb.py SINK_DIR --tables

1. Every .sql file in queries/ must parse in sqlglot's `athena` dialect.
2. The external tables are rebuilt as DuckDB views over the sink's JSON files, with the
   columns and types taken from the CREATE EXTERNAL TABLE statements themselves, so a
   column the DDL lacks or mistypes breaks the query here too. JSON keys match columns
   ignoring case, as in the Hive JSON SerDe. The Parquet tables read the compacted
   parts as they are: each column's type in the files must be the DDL's.
3. create_views.sql and QUERY.sql are transpiled from Athena to DuckDB by sqlglot, not
   by hand, and run.

Prints the result rows as one JSON array on stdout; with --tables, each table's and
view's row count and column types instead.
"""

import json
import pathlib
import sys

import duckdb
import sqlglot
from sqlglot import exp

ROOT = pathlib.Path(__file__).resolve().parents[2]
QUERIES = ROOT / "queries"
TYPES = {"BIGINT": "BIGINT", "DOUBLE": "DOUBLE", "STRING": "VARCHAR", "TEXT": "VARCHAR",
         "VARCHAR": "VARCHAR", "BOOLEAN": "BOOLEAN"}
PREFIXES = {"data": "data", "hyperparams": "hyper", "predict": "fact"}


def parse_all() -> None:
    for path in sorted(QUERIES.glob("*.sql")):
        try:
            sqlglot.parse(path.read_text(), read="athena")
        except sqlglot.errors.ParseError as e:
            sys.exit(f"{path.name}: does not parse as Athena SQL: {e}")


def columns(ddl_file: str) -> tuple[str, dict[str, str]]:
    """The table name and its non-partition columns from a CREATE EXTERNAL TABLE."""
    create = sqlglot.parse_one((QUERIES / ddl_file).read_text(), read="athena")
    assert isinstance(create, exp.Create), ddl_file
    schema = create.this
    table = schema.this.name
    cols = {}
    for col in schema.expressions:
        kind = col.args["kind"].sql(dialect="athena").upper()
        cols[col.name] = TYPES[kind]
    return table, cols


def define_tables(con: duckdb.DuckDBPyConnection, sink: pathlib.Path) -> None:
    con.execute("CREATE SCHEMA svr_etl")
    for ddl in ["create_data_table.sql", "create_hyperparams_table.sql",
                "create_predict_table.sql"]:
        table, cols = columns(ddl)
        prefix = PREFIXES[table]
        partitioned = table != "data"
        pattern = sink / prefix / ("*/*.json" if partitioned else "*.json")
        raw = (f"read_json('{pattern}', format = 'newline_delimited'"
               + (", hive_partitioning = true, hive_types = {'dt': 'VARCHAR'})"
                  if partitioned else ")"))
        if not list(sink.glob(str(pattern.relative_to(sink)))):
            # Nothing there (expired, or not written yet): an empty table.
            raw = "(SELECT 1) WHERE false"
            keys = {}
            partition = ["CAST(NULL AS VARCHAR) AS dt"]
        else:
            # The Hive JSON SerDe matches JSON keys to columns ignoring case (the
            # record's `C` is column `c`); a key the data lacks reads as NULL.
            keys = {r[0].lower(): r[0]
                    for r in con.execute(f"DESCRIBE SELECT * FROM {raw}").fetchall()}
            partition = ["dt"]
        select = [
            f'CAST("{keys[name]}" AS {kind}) AS {name}' if name in keys
            else f"CAST(NULL AS {kind}) AS {name}"
            for name, kind in cols.items()
        ]
        if partitioned:
            select += partition
        con.execute(f"CREATE VIEW svr_etl.{table} AS SELECT {', '.join(select)} FROM {raw}")
    for ddl, prefix in [("create_hyperparams_parquet_table.sql", "hyper_parquet"),
                        ("create_predict_parquet_table.sql", "fact_parquet")]:
        table, cols = columns(ddl)
        if list((sink / prefix).glob("*/*.parquet")):
            raw = (f"read_parquet('{sink / prefix}/*/*.parquet', hive_partitioning = true, "
                   "hive_types = {'dt': 'VARCHAR'})")
            found = dict(r[:2] for r in con.execute(f"DESCRIBE SELECT * FROM {raw}").fetchall())
            for name, kind in cols.items():
                if found.get(name) != kind:
                    sys.exit(f"{prefix}: column {name} is {found.get(name)} in the Parquet "
                             f"files, {kind} in {ddl}")
            select = list(cols) + ["dt"]
            source = raw
        else:
            select = ([f"CAST(NULL AS {kind}) AS {name}" for name, kind in cols.items()]
                      + ["CAST(NULL AS VARCHAR) AS dt"])
            source = "(SELECT 1) WHERE false"
        con.execute(f"CREATE VIEW svr_etl.{table} AS SELECT {', '.join(select)} FROM {source}")
    views = sqlglot.transpile((QUERIES / "create_views.sql").read_text(), read="athena",
                              write="duckdb")
    for statement in views:
        con.execute(statement)


TABLES = ["hyperparams", "predict", "hyperparams_parquet", "predict_parquet",
          "hyperparams_all", "predict_all"]


def describe(con: duckdb.DuckDBPyConnection) -> dict:
    out = {}
    for table in TABLES:
        rows = con.execute(f"SELECT COUNT(*) FROM svr_etl.{table}").fetchone()[0]
        types = {r[0]: r[1] for r in
                 con.execute(f"DESCRIBE SELECT * FROM svr_etl.{table}").fetchall()}
        out[table] = {"rows": rows, "types": types}
    return out


def main() -> None:
    sink, query = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    parse_all()
    con = duckdb.connect()
    define_tables(con, sink)
    if str(query) == "--tables":
        json.dump(describe(con), sys.stdout)
        return
    sql = sqlglot.transpile(query.read_text(), read="athena", write="duckdb")
    statements = [s for s in sql if s.strip()]
    assert len(statements) == 1, statements
    cur = con.execute(statements[0])
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row)) for row in cur.fetchall()]
    json.dump(rows, sys.stdout, default=str)


if __name__ == "__main__":
    main()
