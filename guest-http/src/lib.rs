//! `device-stats`: an HTTP handler over pgcache. `GET /?table=eventos` answers, per device of
//! the table, the number of fixes and the average and maximum speed, as JSON:
//! `{"table": ..., "fixes": n, "devices": [{"device_id", "fixes", "avg_speed", "max_speed"}]}`.
//!
//! The rows come through `pgcache:db/database` (an incremental query by `id`, so a request
//! reads only what is new since the last); `pgcache compose` plugs the adapter in, and the
//! stock CLI serves it: `wasmtime serve -S cli --env PGCACHE_URL=... --env PGCACHE_TOKEN=...`.

use std::collections::BTreeMap;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

#[allow(
    missing_docs,
    reason = "generated; the WIT file carries the documentation"
)]
mod bindings {
    wit_bindgen::generate!({ world: "database-client", path: "../wit" });
}

use bindings::pgcache::db::database::{
    self as db, ColumnData, ColumnValues, IncrementalOptions, ScalarData,
};

struct Handler;

impl wasip2::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let query = request.path_with_query().unwrap_or_default();
        let (status, body) = match table(&query).and_then(|t| stats(&t)) {
            Ok(json) => (200, json),
            Err((status, message)) => (status, format!("{{\"error\":{}}}", quote(&message))),
        };
        respond(out, status, body.as_bytes());
    }
}

wasip2::http::proxy::export!(Handler);

type Failure = (u16, String);

/// The `table` of the query string (default `eventos`), a plain or schema-qualified name.
fn table(path_with_query: &str) -> Result<String, Failure> {
    let table = path_with_query
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("table="))
        .unwrap_or("eventos");
    if table.is_empty()
        || !table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err((400, format!("{table:?} is not a table name")));
    }
    Ok(table.to_owned())
}

#[derive(Default)]
struct Device {
    fixes: u64,
    speed_sum: f64,
    speed_max: f32,
}

/// Per-device statistics of `table`, as JSON.
fn stats(table: &str) -> Result<String, Failure> {
    let result = db::incremental_query(
        &format!("SELECT id, device_id, speed FROM {table}"),
        &[],
        "id",
        IncrementalOptions {
            use_cache: true,
            lookback: None,
        },
    )
    .map_err(|e| (502, format!("pgcache: {e:?}")))?;
    let rows = result.rows;
    let column = |name: &str| -> Result<ColumnValues, Failure> {
        let index = rows
            .schema()
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| (500, format!("no column {name}")))?;
        rows.column(index as u32)
            .map_err(|e| (502, format!("pgcache: {e:?}")))
    };
    let (
        ColumnData::Scalar(ScalarData::Int32(device)),
        ColumnData::Scalar(ScalarData::Float32(speed)),
    ) = (column("device_id")?.data, column("speed")?.data)
    else {
        return Err((500, "device_id is not int4 or speed is not float4".into()));
    };
    let mut devices: BTreeMap<i32, Device> = BTreeMap::new();
    for (d, s) in device.iter().zip(&speed) {
        let entry = devices.entry(*d).or_default();
        entry.fixes += 1;
        entry.speed_sum += f64::from(*s);
        entry.speed_max = entry.speed_max.max(*s);
    }
    let list: Vec<String> = devices
        .iter()
        .map(|(id, d)| {
            format!(
                "{{\"device_id\":{id},\"fixes\":{},\"avg_speed\":{},\"max_speed\":{}}}",
                d.fixes,
                d.speed_sum / d.fixes as f64,
                d.speed_max
            )
        })
        .collect();
    Ok(format!(
        "{{\"table\":{},\"fixes\":{},\"rows_from_database\":{},\"devices\":[{}]}}",
        quote(table),
        device.len(),
        result.report.rows_from_database,
        list.join(",")
    ))
}

fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
        .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        let _ = body
            .chunks(4096)
            .try_for_each(|chunk| stream.blocking_write_and_flush(chunk));
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
