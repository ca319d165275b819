use super::*;

struct Cat(HashMap<String, Relation>);

impl Catalog for Cat {
    fn relation(&self, schema: Option<&str>, name: &str) -> Option<Relation> {
        let r = self.0.get(name)?;
        (schema.is_none() || schema == Some(r.schema.as_str())).then(|| r.clone())
    }
}

fn cat() -> Cat {
    let mut m = HashMap::new();
    for (name, cols, view) in [
        ("customers", vec!["id", "name", "email", "ssn"], None),
        ("orders", vec!["id", "customer_id", "total"], None),
        (
            "contacts",
            vec!["who", "mail"],
            Some("SELECT name, lower(email) FROM customers"),
        ),
    ] {
        m.insert(
            name.to_owned(),
            Relation {
                schema: "public".into(),
                name: name.into(),
                columns: cols.into_iter().map(String::from).collect(),
                view: view.map(String::from),
            },
        );
    }
    Cat(m)
}

/// The sources of each output column, as `column<-table.col,...`.
fn lineage(sql: &str) -> Vec<String> {
    let stmts =
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql)
            .unwrap();
    output_lineage(&stmts[0], SqlDialect::Postgres, &cat())
        .unwrap()
        .into_iter()
        .map(|c| {
            let mut s: Vec<String> = c
                .lineage
                .sources
                .iter()
                .map(|r| format!("{}.{}", r.table, r.column))
                .collect();
            if !c.lineage.unknown.is_empty() {
                s.push("?".into());
            }
            format!("{}<-{}", c.name, s.join(","))
        })
        .collect()
}

#[test]
fn expressions_functions_and_casts_keep_their_sources() {
    assert_eq!(
        lineage("SELECT lower(email) AS e, email || '' AS f, CAST(ssn AS text), id FROM customers"),
        [
            "e<-customers.email",
            "f<-customers.email",
            "ssn<-customers.ssn",
            "id<-customers.id"
        ]
    );
    assert_eq!(
        lineage("SELECT CASE WHEN id > 1 THEN email ELSE name END AS x FROM customers c"),
        ["x<-customers.email,customers.id,customers.name"]
    );
    assert_eq!(
        lineage("SELECT string_agg(ssn, ',') OVER (PARTITION BY name) AS s FROM customers"),
        ["s<-customers.name,customers.ssn"]
    );
}

#[test]
fn sub_selects_ctes_unions_and_derived_tables() {
    assert_eq!(
        lineage("SELECT (SELECT max(ssn) FROM customers c WHERE c.id = o.customer_id) AS s FROM orders o"),
        ["s<-customers.ssn"]
    );
    assert_eq!(
        lineage("WITH x AS (SELECT email AS m FROM customers) SELECT upper(m) FROM x"),
        ["upper<-customers.email"]
    );
    assert_eq!(
        lineage("SELECT id FROM orders UNION ALL SELECT ssn FROM customers"),
        ["id<-customers.ssn,orders.id"]
    );
    assert_eq!(
        lineage("SELECT d.a FROM (SELECT email FROM customers) AS d(a)"),
        ["a<-customers.email"]
    );
    assert_eq!(
        lineage(
            "WITH RECURSIVE r(n, v) AS (SELECT 1, name FROM customers UNION ALL SELECT n + 1, v || ssn FROM r, customers) SELECT v FROM r"
        ),
        ["v<-customers.name,customers.ssn"]
    );
}

#[test]
fn stars_whole_rows_views_and_returning() {
    assert_eq!(
        lineage("SELECT c.* FROM customers c"),
        [
            "id<-customers.id",
            "name<-customers.name",
            "email<-customers.email",
            "ssn<-customers.ssn"
        ]
    );
    assert_eq!(
        lineage("SELECT row_to_json(c) FROM customers c"),
        ["row_to_json<-customers.email,customers.id,customers.name,customers.ssn"]
    );
    assert_eq!(
        lineage("SELECT mail FROM contacts"),
        ["mail<-customers.email"]
    );
    assert_eq!(
        lineage("UPDATE customers SET name = 'x' WHERE id = 1 RETURNING ssn"),
        ["ssn<-customers.ssn"]
    );
    assert_eq!(
        lineage("SELECT x.v FROM customers c, LATERAL (SELECT c.email AS v) x"),
        ["v<-customers.email"]
    );
}

#[test]
fn unknown_functions_and_set_returning_functions_are_unknown() {
    assert_eq!(
        lineage("SELECT my_decrypt(ssn) FROM customers"),
        ["my_decrypt<-customers.ssn,?"]
    );
    assert_eq!(
        lineage("SELECT * FROM get_customers()"),
        ["get_customers<-?"]
    );
}
