//! `/metrics` as Prometheus reads it: the text parsed by a Prometheus
//! text-format parser (prometheus-parse), and the counts the sessions,
//! statements, refusals and pools should have after known traffic.

use prometheus_parse::{Scrape, Value};

use crate::support::approvals::{self, metrics};
use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::pg;

/// The scrape, parsed.
async fn scrape(gw: &crate::support::gateway::Gateway) -> Scrape {
    let text = metrics(gw).await;
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .expect("an HTTP body")
        .to_owned();
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .and_then(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
            _ => None,
        })
}

#[tokio::test]
async fn metrics_parse_and_count_sessions_statements_refusals_and_pools() {
    let direct = crate::support::gateway::connect(&pg::shared().direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS metrics_people; CREATE TABLE metrics_people (email text);
             INSERT INTO metrics_people VALUES ('a@example.com'), ('b@example.com');
             GRANT ALL ON metrics_people TO app_owner;",
        )
        .await
        .unwrap();
    let mut cfg = TestConfig::new(pg::shared());
    approvals::configure(&mut cfg, "");
    // A masking rule in the same policy file.
    let rules = cfg.path().join("review.toml");
    let mut text = std::fs::read_to_string(&rules).unwrap();
    text.push_str(
        "\n[[mask]]\ncolumns = [\"public.metrics_people.email\"]\nfunction = \"email\"\n",
    );
    std::fs::write(&rules, text).unwrap();
    let gw = cfg.start().await;
    gw.catalog_has("metrics_people").await;
    let agent = crate::support::gateway::connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let masked = agent
        .simple_query("SELECT email FROM metrics_people")
        .await
        .unwrap();
    assert!(
        format!("{masked:?}").contains("a***@example.com"),
        "{masked:?}"
    );
    agent.simple_query("SELECT 1").await.unwrap();
    agent.simple_query("SELECT 2").await.unwrap();
    // DDL: no rule names it; the defaults deny it.
    agent
        .simple_query("CREATE TABLE metrics_never (x int)")
        .await
        .unwrap_err();
    // The client has the error before the request's ReadyForQuery, where
    // the gateway times it: a last query, answered whole, comes after it.
    agent.simple_query("SELECT 3").await.unwrap();
    let s = scrape(&gw).await;
    let postgres_app = [("protocol", "postgres"), ("target", "app")];
    assert_eq!(
        value(&s, "sqlgate_sessions_total", &postgres_app),
        Some(1.0)
    );
    assert_eq!(value(&s, "sqlgate_sessions_open", &postgres_app), Some(1.0));
    // The SELECTs (and the startup settings, tagged read too).
    assert!(value(
        &s,
        "sqlgate_statements_total",
        &[("verdict", "allow"), ("tag", "read")]
    )
    .is_some_and(|n| n >= 2.0));
    assert_eq!(
        value(
            &s,
            "sqlgate_refusals_total",
            &[("verdict", "deny"), ("rule", "(defaults)")]
        ),
        Some(1.0)
    );
    // The agent's session holds one server connection of `app`'s pool.
    assert_eq!(value(&s, "sqlgate_pool_in_use", &postgres_app), Some(1.0));
    assert_eq!(value(&s, "sqlgate_pool_waiting", &postgres_app), Some(0.0));
    assert!(value(&s, "sqlgate_pool_size", &postgres_app).is_some_and(|n| n >= 1.0));
    // Both cells of the masked column.
    assert_eq!(value(&s, "sqlgate_masked_cells_total", &[]), Some(2.0));
    // Every request was timed: four SELECTs and the refused CREATE (its
    // marker is a request too).
    let requests = s
        .samples
        .iter()
        .find_map(|x| match (&x.value, x.metric.as_str()) {
            (Value::Histogram(h), "sqlgate_request_seconds") => {
                h.iter().map(|b| b.count).reduce(f64::max)
            }
            _ => None,
        });
    assert_eq!(requests, Some(5.0));
    // The store's write latency is a histogram.
    assert!(
        s.samples
            .iter()
            .any(|x| x.metric == "sqlgate_recording_write_seconds"
                && matches!(x.value, Value::Histogram(_))),
        "{:?}",
        s.samples.iter().map(|x| &x.metric).collect::<Vec<_>>()
    );
}
