//! `[[refresh]]`: incremental queries `pgcache serve` keeps fresh in the background, so the
//! plugins that read them get hits.

use serde::Deserialize;

/// One `[[refresh]]` table of `pgcache.toml`.
///
/// ```toml
/// [[refresh]]
/// tenant = "acme"
/// query = "SELECT * FROM eventos"
/// column = "id"
/// every_seconds = 60
/// # lookback = "2h"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RefreshSchedule {
    /// The tenant whose login, cache and limits the refresh uses.
    pub tenant: String,
    /// The incremental query, as the tenant's plugins write it (same text, same entry).
    pub query: String,
    /// Its ordering column.
    pub column: String,
    /// Seconds between the end of one refresh and the start of the next.
    pub every_seconds: f64,
    /// A lookback window (`"2h"`, `"1000"`), as `--lookback` takes it.
    #[serde(default)]
    pub lookback: Option<String>,
}
