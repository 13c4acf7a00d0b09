//! `eventos-report`: a pgcache plugin over the vehicle-tracking table `eventos`.
//!
//! It refreshes `SELECT id, device_id, ts, lat, lon, speed, status FROM <table>` incrementally
//! by `id` through the host, takes the columns it needs as typed arrays, and reports per
//! device the distance travelled (haversine over consecutive fixes), the average and maximum
//! speed, and the time spent in each status, plus what the refresh did.
//!
//! ```text
//! eventos-report [--table NAME] [--top N] [--json]
//! ```

mod analysis;
mod bindings;
mod columns;

use std::time::Instant;

use analysis::Fleet;
use bindings::pgcache::db::database::{self as db, IncrementalOptions};

struct Args {
    table: String,
    top: usize,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        table: "eventos".into(),
        top: 5,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--table" => args.table = it.next().ok_or("--table needs a name")?,
            "--top" => {
                args.top = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--top needs a number")?
            }
            "--json" => args.json = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: eventos-report [--table NAME] [--top N] [--json]"
                ));
            }
        }
    }
    if !args
        .table
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(format!("{:?} is not a table name", args.table));
    }
    Ok(args)
}

fn main() {
    if let Err(message) = run() {
        eprintln!("eventos-report: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let sql = format!(
        "SELECT id, device_id, ts, lat, lon, speed, status FROM {}",
        args.table
    );
    let started = Instant::now();
    let result = db::incremental_query(
        &sql,
        &[],
        "id",
        IncrementalOptions {
            use_cache: true,
            lookback: None,
        },
    )
    .map_err(|e| format!("query failed: {}", columns::describe(&e)))?;
    let queried = started.elapsed();

    let started = Instant::now();
    let rows = &result.rows;
    let fleet = Fleet::compute(&columns::Fixes::take(rows)?);
    let analysed = started.elapsed();

    let report = &result.report;
    if args.json {
        println!("{}", fleet.to_json(report));
        return Ok(());
    }
    let refresh = if report.full {
        format!(
            "full load: {} rows from the database",
            report.rows_from_database
        )
    } else {
        format!(
            "refresh: {} new rows from the database, {} from the cache",
            report.rows_from_database, report.rows_from_cache
        )
    };
    println!(
        "eventos-report: {} fixes of {} devices in {} ({refresh}; watermark {})",
        fleet.fixes,
        fleet.devices.len(),
        args.table,
        report.watermark.as_deref().unwrap_or("none"),
    );
    println!(
        "  query {:.3} s, analysis {:.3} s",
        queried.as_secs_f64(),
        analysed.as_secs_f64()
    );
    print!("{}", fleet.summary(args.top));
    Ok(())
}
