//! The refresh's own snapshot, as `pg_current_snapshot()` reports it: with no transaction in
//! progress in it, none open right after it, and no transaction id handed out in between,
//! nothing can commit late and the refresh's maximum is final at once. The transactions in
//! flight are listed by [`super::inflight`].

use tokio_postgres::Client;

use crate::error::{Error, Result};

/// A transaction snapshot as `pg_current_snapshot()` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub xmin: u64,
    pub xmax: u64,
    /// Transaction ids in progress at the snapshot.
    pub xip: Vec<u64>,
}

const SNAPSHOT_SQL: &str = "SELECT pg_catalog.pg_current_snapshot()::text";

impl Snapshot {
    /// The snapshot of the caller's transaction (in REPEATABLE READ, the one its statements
    /// see; called first, it is what fixes that snapshot).
    pub async fn current(client: &Client) -> Result<Snapshot> {
        let row = client
            .query_one(SNAPSHOT_SQL, &[])
            .await
            .map_err(|e| Error::from_pg(SNAPSHOT_SQL, e, None))?;
        let text: String = row
            .try_get(0)
            .map_err(|e| Error::from_pg(SNAPSHOT_SQL, e, None))?;
        Snapshot::parse(&text).ok_or_else(|| Error::Decode {
            column: "pg_current_snapshot".into(),
            message: format!("unexpected {text:?}"),
        })
    }

    /// Parses `xmin:xmax:xip,xip,...`.
    pub(crate) fn parse(text: &str) -> Option<Snapshot> {
        let mut it = text.split(':');
        let xmin = it.next()?.parse().ok()?;
        let xmax = it.next()?.parse().ok()?;
        let xip = match it.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        Some(Snapshot { xmin, xmax, xip })
    }
}

impl std::fmt::Display for Snapshot {
    /// The `xmin:xmax:xip,...` text the server gives (what a manifest keeps).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:", self.xmin, self.xmax)?;
        for (i, x) in self.xip.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_print_as_the_server_writes_them() {
        for text in ["100:105:", "100:105:100,102"] {
            assert_eq!(Snapshot::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn parses_snapshots() {
        assert_eq!(
            Snapshot::parse("10:12:"),
            Some(Snapshot {
                xmin: 10,
                xmax: 12,
                xip: vec![]
            })
        );
        assert_eq!(
            Snapshot::parse("10:14:10,12"),
            Some(Snapshot {
                xmin: 10,
                xmax: 14,
                xip: vec![10, 12]
            })
        );
        assert_eq!(Snapshot::parse("garbage"), None);
    }
}
