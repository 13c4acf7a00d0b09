//! The cache quota of a policy: checked before a fetch starts, while it streams (the room a
//! writer has) and, exactly, when a generation is published.

use super::Engine;
use crate::cache::manifest::Manifest;
use crate::cache::stats;
use crate::cache::writer::Quota;
use crate::error::{Error, Result};

impl Engine {
    /// Fails when the cache holds, or would hold with `adding` more bytes, more than the
    /// policy's quota.
    pub fn check_quota(&self, adding: u64) -> Result<()> {
        let Some(quota) = self.settings.policy.cache_quota else {
            return Ok(());
        };
        let used = self.cache_bytes()?;
        if used + adding > quota || (adding == 0 && used >= quota) {
            return Err(Self::over_quota(quota));
        }
        Ok(())
    }

    /// The room a new generation's writer has under the policy's quota, counting the bytes
    /// `replacing` (the generation it replaces) would give back; fails when the cache is full.
    /// [`Engine::publish`] checks the exact figure again; this lets a result that cannot fit
    /// stop while it streams.
    pub fn write_quota(&self, replacing: Option<(&str, u64)>) -> Result<Option<Quota>> {
        let Some(limit) = self.settings.policy.cache_quota else {
            return Ok(None);
        };
        let used = self.cache_bytes()?;
        if used >= limit {
            return Err(Self::over_quota(limit));
        }
        let freed = replacing
            .and_then(|(name, g)| Manifest::read(&self.store.gen_dir(name, g), name).ok())
            .map_or(0, |m| m.bytes());
        Ok(Some(Quota {
            room: limit - used + freed,
            limit,
        }))
    }

    fn cache_bytes(&self) -> Result<u64> {
        Ok(stats::collect(&self.store)?
            .entries
            .iter()
            .map(|e| e.bytes)
            .sum())
    }

    fn over_quota(limit: u64) -> Error {
        Error::LimitExceeded {
            what: "cache quota (bytes)",
            limit,
        }
    }
}
