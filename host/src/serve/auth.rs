//! API tokens: random, prefixed, shown once; only their SHA-256 is kept (in `pgcache.toml`,
//! `tokens_sha256` of a tenant). A bearer token selects its tenant by its hash, so the server
//! never holds a token in clear, and no token reaches a log, an error or `stats`.

use std::collections::HashMap;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// The prefix of pgcache tokens, so a leaked one is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "pgc_";

/// A new token and the hex SHA-256 to put in a tenant's `tokens_sha256`.
pub fn new_token() -> std::io::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = hash(&token);
    Ok((token, hash))
}

/// The hex SHA-256 of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Tenants by the hashes of their tokens.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    by_hash: HashMap<[u8; 32], String>,
}

impl Tokens {
    /// Registers `hex_hash` for `tenant`; a hash that is not 64 hex characters is an error.
    pub fn add(&mut self, hex_hash: &str, tenant: &str) -> Result<(), String> {
        self.add_as(hex_hash, tenant, &format!("tenants.{tenant}.tokens_sha256"))
    }

    /// Registers `hex_hash` for `owner` (a tenant, or the metrics readers); `setting` names
    /// the setting in errors.
    pub fn add_as(&mut self, hex_hash: &str, owner: &str, setting: &str) -> Result<(), String> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hex_hash.trim(), &mut hash)
            .map_err(|_| format!("{setting}: {hex_hash:?} is not a SHA-256 in hex"))?;
        if let Some(other) = self.by_hash.insert(hash, owner.to_owned()) {
            return Err(format!(
                "tenants {other} and {owner} share a token hash; each token belongs to one tenant"
            ));
        }
        Ok(())
    }

    /// Whether no token is registered.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The tenant whose token the request bears (`Authorization: Bearer <token>`).
    pub fn tenant(&self, headers: &HeaderMap) -> Option<&str> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        // Looked up by hash: comparing hashes leaks nothing usable about a token.
        self.by_hash.get(&digest).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_select_their_tenant_by_hash() {
        let (token, h) = new_token().unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        let mut tokens = Tokens::default();
        tokens.add(&h, "acme").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        assert_eq!(tokens.tenant(&headers), Some("acme"));
        headers.insert("authorization", "Bearer pgc_wrong".parse().unwrap());
        assert_eq!(tokens.tenant(&headers), None);
        assert!(tokens.add("zz", "x").is_err());
        assert!(tokens.add(&h, "other").is_err());
    }
}
