//! `[serve]`: settings of `pgcache serve` that belong to no tenant.

use serde::Deserialize;

/// The `[serve]` table of `pgcache.toml`.
///
/// ```toml
/// [serve]
/// metrics_tokens_sha256 = ["9f86d081..."]   # GET /metrics needs one of these bearer tokens
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeSettings {
    /// SHA-256 (hex) of the tokens that may read `/metrics` (`pgcache token` makes one). When
    /// set, `/metrics` answers 404 to anyone without one of them; when empty, it is open to
    /// whoever reaches the port (it names tenants and counts, never tokens or queries).
    #[serde(default)]
    pub metrics_tokens_sha256: Vec<String>,
}

impl ServeSettings {
    /// Lays `top` over `self`: a layer that names metrics tokens replaces the list.
    pub(crate) fn overlay(&mut self, top: ServeSettings) {
        if !top.metrics_tokens_sha256.is_empty() {
            self.metrics_tokens_sha256 = top.metrics_tokens_sha256;
        }
    }
}
