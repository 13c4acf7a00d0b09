//! What the server holds: its tenants (each with its own pool, cache, limits, admission gate
//! and plugins), the token index, one plugin host (one engine, compiled components kept in
//! memory), the metrics, and whether it is draining.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::{RwLock, watch};

use super::auth::Tokens;
use super::error::ApiError;
use super::gate::Gate;
use super::metrics::Metrics;
use crate::config::{Settings, TenantSettings};
use crate::wasm::{Allocation, Plugin, PluginHost};
use crate::{Db, Error, Result};

/// An uploaded plugin: its content hash and the compiled, pre-instantiated component.
pub(crate) struct StoredPlugin {
    /// SHA-256 of the component, hex: where its bytes are stored.
    pub sha256: String,
    /// Size of the component, bytes.
    pub bytes: u64,
    /// What it imports.
    pub imports: Vec<String>,
    /// Ready to run.
    pub plugin: Arc<Plugin>,
}

/// One tenant of the server.
pub(crate) struct Tenant {
    pub name: String,
    pub settings: TenantSettings,
    pub db: Db,
    pub gate: Gate,
    pub plugins: RwLock<BTreeMap<String, StoredPlugin>>,
}

/// Everything the handlers share.
pub(crate) struct AppState {
    pub tenants: HashMap<String, Arc<Tenant>>,
    pub tokens: Tokens,
    /// Tokens that may read `/metrics` (`[serve] metrics_tokens_sha256`); empty: open.
    pub metrics_tokens: Tokens,
    pub host: PluginHost,
    pub metrics: Metrics,
    /// `<cache dir>/.pgcache/serve`: stored components and each tenant's plugin names.
    pub store: PathBuf,
    /// Set when shutdown begins: new work is refused.
    pub draining: AtomicBool,
    /// Becomes true when runs still going must stop.
    pub stop_runs: watch::Receiver<bool>,
    /// The background refreshes and their last runs.
    pub schedules: super::schedule::Reports,
}

impl AppState {
    /// Builds the tenants of `settings` (each must have a token), the plugin host and the
    /// stored plugins. Bad settings fail here, before any socket is opened.
    pub async fn new(settings: &Settings, stop_runs: watch::Receiver<bool>) -> Result<AppState> {
        let bad = |message: String| Error::Config {
            origin: settings.source.clone(),
            message,
        };
        if settings.tenants.is_empty() {
            return Err(bad(
                "pgcache serve serves tenants: declare [tenants.NAME] with a role and \
                 tokens_sha256 (pgcache token makes one)"
                    .into(),
            ));
        }
        let store = settings.cache.dir.join(".pgcache").join("serve");
        std::fs::create_dir_all(store.join("components"))
            .map_err(Error::cache_io("creating", &store))?;
        // One engine for every run all day: the pooling allocator, where the address space
        // allows it, reuses memories, tables and stacks instead of mapping them per run.
        let host = PluginHost::with_allocation(
            Some(&settings.cache.dir.join(".pgcache").join("compiled")),
            Allocation::Pooling,
        )
        .map_err(|e| bad(e.to_string()))?;
        tracing::info!(allocation = ?host.allocation(), "plugin host ready");
        let mut tokens = Tokens::default();
        let mut metrics_tokens = Tokens::default();
        for h in &settings.serve.metrics_tokens_sha256 {
            metrics_tokens
                .add_as(h, "metrics", "serve.metrics_tokens_sha256")
                .map_err(bad)?;
        }
        let mut tenants = HashMap::new();
        for (name, t) in &settings.tenants {
            if t.tokens_sha256.is_empty() {
                return Err(bad(format!(
                    "tenants.{name} has no tokens_sha256: nobody could call as it"
                )));
            }
            for h in &t.tokens_sha256 {
                tokens.add(h, name).map_err(bad)?;
            }
            let db = Db::connect_lazy(settings.for_tenant(name)?)?;
            let tenant = Tenant {
                name: name.clone(),
                settings: t.clone(),
                db,
                gate: Gate::new(t.limits.max_concurrent, t.limits.max_queued),
                plugins: RwLock::new(BTreeMap::new()),
            };
            tenants.insert(name.clone(), Arc::new(tenant));
        }
        let metrics = Metrics::new();
        metrics
            .pooling
            .set(i64::from(host.allocation() == Allocation::Pooling));
        let state = AppState {
            tenants,
            tokens,
            metrics_tokens,
            host,
            metrics,
            store,
            draining: AtomicBool::new(false),
            stop_runs,
            schedules: Default::default(),
        };
        for tenant in state.tenants.values() {
            state.load_plugins(tenant).await;
        }
        Ok(state)
    }

    /// The tenant a request's token selects; 401 otherwise, 503 while draining.
    pub fn tenant(&self, headers: &axum::http::HeaderMap) -> Result<Arc<Tenant>, ApiError> {
        let name = self
            .tokens
            .tenant(headers)
            .ok_or_else(ApiError::unauthorized)?;
        if self.draining.load(Ordering::Acquire) {
            return Err(ApiError::shutting_down());
        }
        self.tenants
            .get(name)
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }

    fn index_path(&self, tenant: &str) -> PathBuf {
        self.store.join(format!("{tenant}.plugins.json"))
    }

    fn component_path(&self, sha256: &str) -> PathBuf {
        self.store.join("components").join(format!("{sha256}.wasm"))
    }

    /// Loads a tenant's stored plugins (best effort: one that no longer loads is logged).
    async fn load_plugins(&self, tenant: &Tenant) {
        let Ok(text) = std::fs::read_to_string(self.index_path(&tenant.name)) else {
            return;
        };
        let index: BTreeMap<String, String> = serde_json::from_str(&text).unwrap_or_default();
        let mut plugins = tenant.plugins.write().await;
        for (name, sha) in index {
            let path = self.component_path(&sha);
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| self.compile(&name, &bytes).map_err(|e| e.to_string()))
            {
                Ok(stored) => {
                    plugins.insert(name, stored);
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant.name, plugin = %name, error = %e, "stored plugin not loaded")
                }
            }
        }
    }

    /// Checks a component's imports (before compiling), compiles and links it.
    pub fn compile(&self, name: &str, bytes: &[u8]) -> std::result::Result<StoredPlugin, ApiError> {
        let imports = super::imports::imports(bytes).map_err(ApiError::bad_request)?;
        let missing = super::imports::missing(&imports);
        if !missing.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the component imports {}, which this host does not offer: it offers WASI 0.2 \
                 (cli, clocks, filesystem, io, random, sockets) and pgcache:db/database",
                missing.join(", ")
            )));
        }
        let plugin = self
            .host
            .load_bytes(name, bytes)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(StoredPlugin {
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
            imports,
            plugin: Arc::new(plugin),
        })
    }

    /// Stores a compiled plugin's bytes (content-addressed) and the tenant's name for it.
    pub async fn save(
        &self,
        tenant: &Tenant,
        name: &str,
        bytes: &[u8],
        stored: StoredPlugin,
    ) -> Result<()> {
        let path = self.component_path(&stored.sha256);
        if !path.exists() {
            write_atomically(&path, bytes)?;
        }
        let mut plugins = tenant.plugins.write().await;
        plugins.insert(name.to_owned(), stored);
        self.write_index(tenant, &plugins)
    }

    /// Forgets a tenant's plugin; true if it had one of that name.
    pub async fn remove(&self, tenant: &Tenant, name: &str) -> Result<bool> {
        let mut plugins = tenant.plugins.write().await;
        let removed = plugins.remove(name).is_some();
        if removed {
            self.write_index(tenant, &plugins)?;
        }
        Ok(removed)
    }

    fn write_index(&self, tenant: &Tenant, plugins: &BTreeMap<String, StoredPlugin>) -> Result<()> {
        let index: BTreeMap<&str, &str> = plugins
            .iter()
            .map(|(n, p)| (n.as_str(), p.sha256.as_str()))
            .collect();
        let text = serde_json::to_vec_pretty(&index).unwrap_or_default();
        write_atomically(&self.index_path(&tenant.name), &text)
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    // A name of its own per writer: two uploads of one component never share a temporary.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(Error::cache_io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::cache_io("renaming", path))
}
