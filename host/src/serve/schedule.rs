//! Background refreshes (`[[refresh]]`): each schedule refreshes its incremental query as its
//! tenant, then sleeps; its last run, duration, rows and error are kept for `/v1/stats` and
//! counted in `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use super::metrics::RunLabel;
use super::state::AppState;
use crate::config::RefreshSchedule;
use crate::{IncrementalOptions, Lookback};

/// What the last run of a schedule did.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct LastRun {
    /// When it ended, Unix microseconds.
    pub at: Option<i64>,
    /// How long it took, seconds.
    pub seconds: Option<f64>,
    /// Rows read from the database.
    pub rows_from_database: Option<u64>,
    /// Rows in the entry afterwards.
    pub rows: Option<u64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Runs so far.
    pub runs: u64,
}

/// The schedules' last runs, by index in the settings.
pub(crate) type Reports = Arc<Mutex<HashMap<usize, (RefreshSchedule, LastRun)>>>;

/// Starts one task per schedule; they stop when `stop` becomes true.
pub(crate) fn start(
    state: &Arc<AppState>,
    schedules: &[RefreshSchedule],
    stop: watch::Receiver<bool>,
) -> crate::Result<()> {
    for (i, schedule) in schedules.iter().enumerate() {
        let bad = |m: String| crate::Error::Config {
            origin: None,
            message: format!("refresh #{}: {m}", i + 1),
        };
        if !state.tenants.contains_key(&schedule.tenant) {
            return Err(bad(format!("no tenant {:?}", schedule.tenant)));
        }
        let every = Duration::try_from_secs_f64(schedule.every_seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| bad("every_seconds must be a positive number".into()))?;
        let lookback = schedule
            .lookback
            .as_deref()
            .map(Lookback::parse)
            .transpose()
            .map_err(bad)?;
        state
            .schedules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(i, (schedule.clone(), LastRun::default()));
        let (state, schedule, mut stop) = (state.clone(), schedule.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                refresh_once(&state, i, &schedule, lookback).await;
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
                if *stop.borrow() {
                    return;
                }
            }
        });
    }
    Ok(())
}

async fn refresh_once(
    state: &AppState,
    i: usize,
    schedule: &RefreshSchedule,
    lookback: Option<Lookback>,
) {
    let Some(tenant) = state.tenants.get(&schedule.tenant) else {
        return;
    };
    let started = Instant::now();
    let mut options = IncrementalOptions::default();
    if let Some(l) = lookback {
        options = options.lookback(l);
    }
    let result = match tenant.db.check_plugin_role().await {
        Ok(()) => {
            tenant
                .db
                .incremental_query(&schedule.query, &[], &schedule.column, &options)
                .await
        }
        Err(e) => Err(e),
    };
    let mut last = LastRun {
        at: Some(chrono::Utc::now().timestamp_micros()),
        seconds: Some(started.elapsed().as_secs_f64()),
        ..LastRun::default()
    };
    let outcome = match &result {
        Ok(r) => {
            last.rows = Some(r.num_rows());
            last.rows_from_database = r.refresh_report().map(|rep| rep.rows_from_database);
            "ok"
        }
        Err(e) => {
            tracing::warn!(tenant = %schedule.tenant, error = %e, "scheduled refresh failed");
            last.error = Some(e.public_message());
            "error"
        }
    };
    state
        .metrics
        .refreshes
        .get_or_create(&RunLabel {
            tenant: schedule.tenant.clone(),
            outcome: outcome.into(),
        })
        .inc();
    let mut reports = state
        .schedules
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, entry)) = reports.get_mut(&i) {
        last.runs = entry.runs + 1;
        *entry = last;
    }
}

/// The schedules of `tenant` with their last runs, for `/v1/stats`.
pub(crate) fn report(state: &AppState, tenant: &str) -> serde_json::Value {
    let reports = state
        .schedules
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut list: Vec<_> = reports
        .iter()
        .filter(|(_, (s, _))| s.tenant == tenant)
        .map(|(i, (s, last))| {
            json!({ "index": i, "query": s.query, "column": s.column,
                    "every_seconds": s.every_seconds, "last": last })
        })
        .collect();
    list.sort_by_key(|v| v["index"].as_u64());
    json!(list)
}
