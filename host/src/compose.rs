//! `pgcache compose`: plugs the adapter component (`adapter/`, which exports
//! `pgcache:db/database` over `wasi:http`) into a plugin, in-process with `wac-graph`'s
//! `plug` (what `wac plug` does), and checks that the result imports nothing but WASI, so the
//! stock `wasmtime` CLI can run it.

use std::path::{Path, PathBuf};

use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions, PlugError};

/// The adapter's file name, looked for next to the `pgcache` executable.
pub const ADAPTER_FILE: &str = "pgcache-adapter.wasm";

/// Why a composition failed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No adapter given and none next to the executable.
    #[error(
        "no adapter component: pass --adapter FILE, or put {ADAPTER_FILE} next to pgcache \
         (cargo build --release --target wasm32-wasip2 --manifest-path adapter/Cargo.toml)"
    )]
    NoAdapter,
    /// A file is not a component `wac-graph` can read.
    #[error("{path} is not a WebAssembly component: {message}")]
    NotAComponent {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Nothing of the adapter's fits an import of the plugin.
    #[error(
        "nothing plugged: the plugin imports {imports}; the adapter exports {exports} \
         (an import of pgcache:db/database must match the adapter's version and types)"
    )]
    NothingPlugged {
        /// The plugin's imports.
        imports: String,
        /// The adapter's exports.
        exports: String,
    },
    /// Composing or encoding failed (a type mismatch shows here).
    #[error("composing failed: {0:#}")]
    Graph(anyhow::Error),
    /// The composition still imports something the stock CLI does not provide.
    #[error(
        "the composed component still imports {0}: only wasi:* imports can run under the stock wasmtime CLI"
    )]
    NotOnlyWasi(String),
}

/// What a composition produced.
#[derive(Debug)]
pub struct Composed {
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// What it imports (all `wasi:*`).
    pub imports: Vec<String>,
}

/// The adapter to use: `explicit`, else [`ADAPTER_FILE`] next to the running executable.
pub fn find_adapter(explicit: Option<&Path>) -> Result<PathBuf, ComposeError> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(ADAPTER_FILE)))
        .filter(|p| p.is_file())
        .ok_or(ComposeError::NoAdapter)
}

fn read(path: &Path) -> Result<Vec<u8>, ComposeError> {
    std::fs::read(path).map_err(|source| ComposeError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })
}

/// Plugs the adapter at `adapter` into the plugin at `plugin`.
pub fn compose_files(plugin: &Path, adapter: &Path) -> Result<Composed, ComposeError> {
    compose(plugin, &read(plugin)?, adapter, &read(adapter)?)
}

/// Plugs `adapter` into `plugin` (paths for messages only).
pub fn compose(
    plugin_path: &Path,
    plugin: &[u8],
    adapter_path: &Path,
    adapter: &[u8],
) -> Result<Composed, ComposeError> {
    let mut graph = CompositionGraph::new();
    let load =
        |graph: &mut CompositionGraph, name: &str, path: &Path, bytes: &[u8]| {
            let package = Package::from_bytes(name, None, bytes.to_vec(), graph.types_mut())
                .map_err(|e| ComposeError::NotAComponent {
                    path: path.to_owned(),
                    message: format!("{e:#}"),
                })?;
            graph
                .register_package(package)
                .map_err(|e| ComposeError::Graph(e.into()))
        };
    let socket = load(&mut graph, "pgcache:plugin", plugin_path, plugin)?;
    let plug = load(&mut graph, "pgcache:adapter", adapter_path, adapter)?;
    let names = |graph: &CompositionGraph, id: wac_graph::PackageId, imports: bool| {
        let world = &graph.types()[graph[id].ty()];
        let map = if imports {
            &world.imports
        } else {
            &world.exports
        };
        let list: Vec<&str> = map.keys().map(String::as_str).collect();
        if list.is_empty() {
            "nothing".to_owned()
        } else {
            list.join(", ")
        }
    };
    match wac_graph::plug(&mut graph, vec![plug], socket) {
        Ok(()) => {}
        Err(PlugError::NoPlugHappened) => {
            return Err(ComposeError::NothingPlugged {
                imports: names(&graph, socket, true),
                exports: names(&graph, plug, false),
            });
        }
        Err(PlugError::GraphError { source }) => return Err(ComposeError::Graph(source)),
    }
    let bytes = graph
        .encode(EncodeOptions::default())
        .map_err(|e| ComposeError::Graph(e.into()))?;
    // Both components import much the same WASI: the composition imports each name once.
    let mut imports: Vec<String> = Vec::new();
    for (name, ..) in graph.imports() {
        if !imports.iter().any(|i| i == name) {
            imports.push(name.to_owned());
        }
    }
    let foreign: Vec<&str> = imports
        .iter()
        .map(String::as_str)
        .filter(|name| !name.starts_with("wasi:"))
        .collect();
    if !foreign.is_empty() {
        return Err(ComposeError::NotOnlyWasi(foreign.join(", ")));
    }
    Ok(Composed { bytes, imports })
}
