//! A snapshot of a target's catalog: its tables, views and columns, read
//! once on a side connection and kept, so that lineage (which is
//! synchronous, on the statement path) never waits on the server. It is
//! read again after DDL.

use std::collections::HashMap;

use super::lineage::{Catalog, ColumnRef, Relation};

/// The catalog query for PostgreSQL: one row per column of every user
/// table, view, materialized view and foreign table, with the view's
/// definition on its rows, and of every relation of the system catalogs
/// (`pg_catalog`, `information_schema`), whose views count as tables:
/// their columns are what the built-in rules mask (definitions, other
/// sessions' statements). Columns: oid, schema, name, kind, attnum,
/// column, view definition.
pub const PG_CATALOG_QUERY: &str = "SELECT c.oid::text, n.nspname, c.relname, c.relkind::text, \
     a.attnum::text, a.attname, \
     CASE WHEN c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     THEN pg_catalog.pg_get_viewdef(c.oid) END \
     FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname NOT LIKE 'pg_toast%' \
     ORDER BY c.oid, a.attnum";

/// The catalog query for MySQL: schema, table, column, view definition;
/// `information_schema`'s tables too (the built-in rules mask some of
/// their columns).
pub const MYSQL_CATALOG_QUERY: &str = "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, v.VIEW_DEFINITION \
     FROM information_schema.COLUMNS c \
     LEFT JOIN information_schema.VIEWS v ON v.TABLE_SCHEMA = c.TABLE_SCHEMA AND v.TABLE_NAME = c.TABLE_NAME \
     WHERE c.TABLE_SCHEMA NOT IN ('mysql', 'performance_schema', 'sys') \
     ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION";

/// A target's tables and views.
#[derive(Debug, Clone, Default)]
pub struct CatalogSnapshot {
    relations: HashMap<(String, String), Relation>,
    /// PostgreSQL: table OID → (schema, name, attnum → column).
    by_oid: HashMap<u32, (String, String, HashMap<i16, String>)>,
    /// Schemas searched for unqualified names, in order.
    search_path: Vec<String>,
    /// Searched before them unless they name it (PostgreSQL's
    /// `pg_catalog`).
    implicit: Option<String>,
    /// MySQL: relations by lower-cased (schema, name), as names are
    /// case-insensitive on most systems.
    folded: Option<HashMap<(String, String), (String, String)>>,
}

impl CatalogSnapshot {
    /// From the rows of [`PG_CATALOG_QUERY`]; `search_path` resolves
    /// unqualified names (`["public"]` by default).
    pub fn from_pg_rows(rows: &[Vec<Option<String>>], search_path: Vec<String>) -> Self {
        let implicit =
            (!search_path.iter().any(|s| s == "pg_catalog")).then(|| "pg_catalog".to_owned());
        let mut snap = CatalogSnapshot {
            search_path,
            implicit,
            ..Default::default()
        };
        for row in rows {
            let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let (Ok(oid), Ok(attnum)) = (get(0).parse::<u32>(), get(4).parse::<i16>()) else {
                continue;
            };
            let (schema, name, column) = (get(1), get(2), get(5));
            // The extension's view over a set-returning function: its
            // columns are what the built-in rules name.
            let view = row
                .get(6)
                .cloned()
                .flatten()
                .filter(|_| !name.starts_with("pg_stat_statements"));
            let rel = snap
                .relations
                .entry((schema.clone(), name.clone()))
                .or_insert_with(|| Relation {
                    schema: schema.clone(),
                    name: name.clone(),
                    columns: Vec::new(),
                    view: view.map(|v| v.trim().trim_end_matches(';').to_owned()),
                });
            rel.columns.push(column.clone());
            snap.by_oid
                .entry(oid)
                .or_insert_with(|| (schema, name, HashMap::new()))
                .2
                .insert(attnum, column);
        }
        snap
    }

    /// From the rows of [`MYSQL_CATALOG_QUERY`]; unqualified names resolve
    /// in `database`.
    pub fn from_mysql_rows(rows: &[Vec<Option<String>>], database: &str) -> Self {
        let mut snap = CatalogSnapshot {
            search_path: vec![database.to_owned()],
            ..Default::default()
        };
        for row in rows {
            let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            // Column names are case-insensitive in MySQL: kept folded.
            let (schema, name, column) = (get(0), get(1), get(2).to_lowercase());
            let view = row.get(3).cloned().flatten();
            snap.relations
                .entry((schema.clone(), name.clone()))
                .or_insert_with(|| Relation {
                    schema,
                    name,
                    columns: Vec::new(),
                    view,
                })
                .columns
                .push(column);
        }
        snap.folded = Some(
            snap.relations
                .keys()
                .map(|(s, n)| ((s.to_lowercase(), n.to_lowercase()), (s.clone(), n.clone())))
                .collect(),
        );
        snap
    }

    /// The column a PostgreSQL RowDescription field names by table OID and
    /// attribute number (the wire's ground truth for plain references).
    /// Only columns of tables count: a view's column is named by the
    /// view's OID even when it is computed.
    pub fn column_by_oid(&self, table_oid: u32, attnum: i16) -> Option<ColumnRef> {
        let (schema, table, cols) = self.by_oid.get(&table_oid)?;
        self.base_column(schema, table, cols.get(&attnum)?)
    }

    /// A column of a table (not a view), as the catalog spells it; for
    /// MySQL column definitions (schema, org_table, org_name), compared
    /// without case.
    pub fn base_column(&self, schema: &str, table: &str, column: &str) -> Option<ColumnRef> {
        let rel = self.relation(Some(schema), table)?;
        if rel.view.is_some() {
            return None;
        }
        let column = rel
            .columns
            .iter()
            .find(|c| c.as_str() == column)
            .or_else(|| rel.columns.iter().find(|c| c.eq_ignore_ascii_case(column)))?;
        Some(ColumnRef {
            schema: rel.schema.clone(),
            table: rel.name.clone(),
            column: column.clone(),
        })
    }

    /// Every column of every relation (what a statement may touch).
    pub fn columns(&self) -> impl Iterator<Item = ColumnRef> + '_ {
        self.relations.values().flat_map(|r| {
            r.columns.iter().map(|c| ColumnRef {
                schema: r.schema.clone(),
                table: r.name.clone(),
                column: c.clone(),
            })
        })
    }
}

impl Catalog for CatalogSnapshot {
    fn relation(&self, schema: Option<&str>, name: &str) -> Option<Relation> {
        let find = |s: &str| {
            let key = (s.to_owned(), name.to_owned());
            self.relations
                .get(&key)
                .or_else(|| {
                    let folded = self.folded.as_ref()?;
                    let real = folded.get(&(key.0.to_lowercase(), key.1.to_lowercase()))?;
                    self.relations.get(real)
                })
                .cloned()
        };
        match schema {
            Some(s) => find(s),
            None => self
                .implicit
                .iter()
                .chain(&self.search_path)
                .find_map(|s| find(s)),
        }
    }
}

/// A session's view of the snapshot: unqualified names resolve under the
/// target's search path and under every search path the session set
/// (`SET search_path`, `set_config`), since which of them the server
/// still has (a `SET LOCAL` ended, a transaction rolled back) is not
/// followed. A name that resolves to one relation under all of them is
/// that relation; one that resolves to several is ambiguous, never
/// guessed.
pub struct SessionCatalog<'a> {
    /// The target's snapshot.
    pub snapshot: &'a CatalogSnapshot,
    /// The search paths the session set.
    pub paths: &'a [Vec<String>],
}

impl SessionCatalog<'_> {
    fn candidates(&self, name: &str) -> Vec<Relation> {
        let mut found: Vec<Relation> = Vec::new();
        let mut add = |r: Option<Relation>| {
            if let Some(r) = r {
                if !found
                    .iter()
                    .any(|f| f.schema == r.schema && f.name == r.name)
                {
                    found.push(r);
                }
            }
        };
        add(self.snapshot.relation(None, name));
        for path in self.paths {
            let implicit = (!path.iter().any(|s| s == "pg_catalog"))
                .then_some("pg_catalog")
                .filter(|_| self.snapshot.implicit.is_some());
            add(implicit
                .into_iter()
                .chain(path.iter().map(String::as_str))
                .find_map(|s| self.snapshot.relation(Some(s), name)));
        }
        found
    }
}

impl Catalog for SessionCatalog<'_> {
    fn relation(&self, schema: Option<&str>, name: &str) -> Option<Relation> {
        if schema.is_some() || self.paths.is_empty() {
            return self.snapshot.relation(schema, name);
        }
        let mut found = self.candidates(name);
        (found.len() == 1).then(|| found.remove(0))
    }

    fn ambiguous(&self, name: &str) -> Option<Vec<String>> {
        if self.paths.is_empty() {
            return None;
        }
        let found = self.candidates(name);
        (found.len() > 1).then(|| {
            found
                .iter()
                .map(|r| format!("{}.{}", r.schema, r.name))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::mask::lineage::output_lineage;
    use crate::policy::parse::SqlDialect;

    fn row(cells: &[Option<&str>]) -> Vec<Option<String>> {
        cells.iter().map(|c| c.map(String::from)).collect()
    }

    #[test]
    fn a_session_search_path_resolves_or_is_ambiguous() {
        let rows = vec![
            row(&[
                Some("10"),
                Some("public"),
                Some("t"),
                Some("r"),
                Some("1"),
                Some("a"),
                None,
            ]),
            row(&[
                Some("11"),
                Some("s"),
                Some("u"),
                Some("r"),
                Some("1"),
                Some("b"),
                None,
            ]),
            row(&[
                Some("12"),
                Some("s"),
                Some("t"),
                Some("r"),
                Some("1"),
                Some("c"),
                None,
            ]),
        ];
        let snap = CatalogSnapshot::from_pg_rows(&rows, vec!["public".into()]);
        let paths = vec![super::super::search_path::parse("s, \"public\"")];
        let session = SessionCatalog {
            snapshot: &snap,
            paths: &paths,
        };
        assert_eq!(session.relation(None, "u").unwrap().schema, "s");
        assert!(session.relation(None, "t").is_none());
        assert_eq!(
            session.ambiguous("t"),
            Some(vec!["public.t".to_owned(), "s.t".to_owned()])
        );
        assert_eq!(
            super::super::search_path::parse("'$user', A,\"B\""),
            ["'$user'", "a", "B"]
        );
    }

    #[test]
    fn pg_rows_build_relations_views_and_oid_lookup() {
        let rows = vec![
            row(&[
                Some("16384"),
                Some("public"),
                Some("customers"),
                Some("r"),
                Some("1"),
                Some("id"),
                None,
            ]),
            row(&[
                Some("16384"),
                Some("public"),
                Some("customers"),
                Some("r"),
                Some("2"),
                Some("email"),
                None,
            ]),
            row(&[
                Some("16400"),
                Some("public"),
                Some("v"),
                Some("v"),
                Some("1"),
                Some("e"),
                Some(" SELECT lower(customers.email) AS e\n   FROM customers;"),
            ]),
        ];
        let snap = CatalogSnapshot::from_pg_rows(&rows, vec!["public".into()]);
        assert_eq!(
            snap.column_by_oid(16384, 2).unwrap().to_string(),
            "public.customers.email"
        );
        assert!(snap.column_by_oid(16384, 9).is_none());
        let stmt = &sqlparser::parser::Parser::parse_sql(
            &sqlparser::dialect::PostgreSqlDialect {},
            "SELECT e FROM v",
        )
        .unwrap()[0];
        let out = output_lineage(stmt, SqlDialect::Postgres, &snap).unwrap();
        assert_eq!(
            out[0].lineage.sources.iter().next().unwrap().to_string(),
            "public.customers.email"
        );
    }
}
