//! One tokio runtime for the process, and [`run`]: a pgcache call with the GIL released,
//! interruptible with Ctrl-C, reporting progress to a Python callback when asked.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pgcache::Progress;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::errors::to_py;

/// How often a waiting call looks at signals and reports progress.
const TICK: Duration = Duration::from_millis(100);

/// The process's runtime, started on first use.
pub fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("pgcache")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the async runtime: {e}")))
}

/// Where a call reports rows and bytes: the counters the fetch updates and the Python callable
/// that is given `(rows, bytes)` every [`TICK`].
pub struct Report {
    /// The counters handed to the fetch.
    pub progress: Arc<Progress>,
    /// `callback(rows, bytes)`.
    pub callback: Py<PyAny>,
}

/// Runs `call` on the runtime and waits for it with the GIL released, so other Python threads
/// run meanwhile. Every [`TICK`] it takes the GIL back to check for signals (Ctrl-C cancels the
/// call and raises `KeyboardInterrupt`) and to report progress.
pub fn run<T, F>(py: Python<'_>, report: Option<&Report>, call: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = pgcache::Result<T>> + Send + 'static,
{
    let rt = runtime()?;
    let mut task = rt.spawn(call);
    loop {
        let waited =
            py.detach(|| rt.block_on(async { tokio::time::timeout(TICK, &mut task).await }));
        match waited {
            Ok(Ok(outcome)) => return outcome.map_err(|e| to_py(py, e)),
            Ok(Err(join)) => {
                return Err(PyRuntimeError::new_err(format!(
                    "pgcache call failed: {join}"
                )));
            }
            Err(_) => {
                if let Err(interrupt) = py.check_signals() {
                    task.abort();
                    return Err(interrupt);
                }
                if let Some(r) = report {
                    r.callback
                        .call1(py, (r.progress.rows(), r.progress.bytes()))?;
                }
            }
        }
    }
}
