//! What the sandbox's checks cost a `query` call: parsing with PostgreSQL's grammar and
//! walking the tree for refused functions (every call), and the allow-list's EXPLAIN
//! (tenants with `allow_tables`).

use std::time::Instant;

use pgcache::{Db, QueryOptions, Settings, Statement};

use super::{Sample, Table};

/// A query of the size analysts write: joins, a CTE, CASE, aggregates in a subquery.
const ANALYTIC: &str = "WITH recent AS (
    SELECT device_id, ts, lat, lon, speed, status FROM pgcache_bench.eventos WHERE ts > now() - interval '7 days')
SELECT r.device_id, r.ts, r.lat, r.lon,
       CASE WHEN r.speed > 80 THEN 'fast' WHEN r.speed > 30 THEN 'normal' ELSE 'slow' END AS band,
       coalesce(s.stops, 0) AS stops
FROM recent r
LEFT JOIN (SELECT device_id, count(*) AS stops FROM pgcache_bench.eventos WHERE status = 'stopped' GROUP BY 1) s
  ON s.device_id = r.device_id
WHERE r.status <> 'offline' AND r.lat BETWEEN -90 AND 90
ORDER BY r.device_id, r.ts";

/// Median of `runs` samples of `n` parse-and-check rounds of `sql`, per round.
fn parse_and_check(sql: &str, runs: usize) -> Sample {
    let n = 2000;
    let mut per_call = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        for _ in 0..n {
            let statement = Statement::parse(sql).expect("the bench query parses");
            statement.check_query().expect("a query");
            statement.check_functions(&[]).expect("no refused function");
        }
        per_call.push(started.elapsed() / n);
    }
    Sample(per_call)
}

/// Adds the rows: parse and check per call for a short and an analytic query, and one
/// uncached `SELECT 1` with and without a table allow-list.
pub async fn measure(table: &mut Table, settings: Settings, runs: usize) {
    for (what, sql) in [
        (
            "SELECT * FROM eventos",
            "SELECT * FROM pgcache_bench.eventos",
        ),
        ("a 10-line analytic query", ANALYTIC),
    ] {
        table.timed(
            &format!("statement checks per query call: {what}"),
            &parse_and_check(sql, runs),
            "parse with libpg_query + query and function checks".into(),
        );
    }
    let mut listed = settings.clone();
    listed.policy.allow_tables = Some(vec!["pgcache_bench".into()]);
    for (what, settings) in [("without", settings), ("with", listed)] {
        let db = Db::connect(settings).await.expect("connect");
        let mut samples = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            for _ in 0..200 {
                db.query(
                    "SELECT id FROM pgcache_bench.eventos WHERE id = 1",
                    &[],
                    &QueryOptions::default().no_cache(),
                )
                .await
                .expect("query");
            }
            samples.push(started.elapsed() / 200);
        }
        table.timed(
            &format!("uncached one-row query, {what} a table allow-list"),
            &Sample(samples),
            "the allow-list adds one EXPLAIN round trip".into(),
        );
    }
}
