//! What a component imports, read from its bytes before anything is compiled, checked against
//! what the host offers: WASI 0.2 (cli, clocks, filesystem, io, random, sockets) and
//! `pgcache:db/database`.

use wasmparser::{Parser, Payload};

/// WASI 0.2 packages the host links.
const WASI_PACKAGES: &[&str] = &["cli", "clocks", "filesystem", "io", "random", "sockets"];

/// The top-level imports of a component, or why the bytes are not one.
pub(crate) fn imports(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut saw_component = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a WebAssembly component: {e}"))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 {
                    if encoding != wasmparser::Encoding::Component {
                        return Err("a core WebAssembly module, not a component: build it for \
                             wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
                            .into());
                    }
                    saw_component = true;
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| format!("unreadable import: {e}"))?;
                    names.push(import.name.full_name().into_owned());
                }
            }
            _ => {}
        }
    }
    if !saw_component {
        return Err("not a WebAssembly component".into());
    }
    Ok(names)
}

/// The imports of `names` this host does not offer.
pub(crate) fn missing(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|name| !offered(name))
        .cloned()
        .collect()
}

fn offered(name: &str) -> bool {
    let unversioned = name.split('@').next().unwrap_or(name);
    if let Some(rest) = unversioned.strip_prefix("wasi:") {
        let package = rest.split('/').next().unwrap_or("");
        return WASI_PACKAGES.contains(&package) && name.contains("@0.2");
    }
    unversioned == "pgcache:db/database"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_offered() {
        let names: Vec<String> = [
            "wasi:cli/environment@0.2.3",
            "pgcache:db/database@0.1.0",
            "wasi:http/outgoing-handler@0.2.3",
            "acme:x/y",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            missing(&names),
            ["wasi:http/outgoing-handler@0.2.3", "acme:x/y"]
        );
        assert!(imports(b"not wasm").is_err());
        assert!(
            imports(&wat_module())
                .unwrap_err()
                .contains("core WebAssembly module")
        );
    }

    fn wat_module() -> Vec<u8> {
        // The smallest core module: magic and version 1.
        vec![0, b'a', b's', b'm', 1, 0, 0, 0]
    }
}
