//! The cache directory on disk, and atomic commits of entry generations.
//!
//! ```text
//! <cache dir>/
//!   cache_0123456789ab -> .pgcache/gen/cache_0123456789ab.g00000007   (symlink: the entry)
//!   .pgcache/gen/cache_0123456789ab.g00000007/
//!       _manifest.json        what the entry holds (readers of the dataset skip `_` names)
//!       part-00000001.parquet immutable parts, shared between generations by hard links
//!   .pgcache/lock/cache_0123456789ab.lock   cross-process refresh lock
//!   .pgcache/hits/cache_0123456789ab        hit counter
//! ```
//!
//! A new generation is built in its own directory, fsynced, and published by renaming a new
//! symlink over the entry's name: `rename(2)` is atomic, so a reader — pgcache, pyarrow,
//! polars or DuckDB opening `cache_…` as a Parquet dataset — sees the old generation or the
//! new one, never a mix. Generations older than the previous one are removed after a commit;
//! leftovers of a crash are removed by the next commit of the same entry.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Subdirectory holding everything but the entry links.
pub(crate) const META_DIR: &str = ".pgcache";
/// Name of the manifest inside a generation directory.
pub(crate) const MANIFEST: &str = "_manifest.json";

/// The cache directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the cache directory.
    pub fn open(dir: &Path) -> Result<Store> {
        for sub in ["gen", "lock", "hits"] {
            let path = dir.join(META_DIR).join(sub);
            fs::create_dir_all(&path).map_err(Error::cache_io("creating", &path))?;
        }
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path readers open: the entry's symlink.
    pub fn entry_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.dir
            .join(META_DIR)
            .join("lock")
            .join(format!("{name}.lock"))
    }

    pub fn hits_path(&self, name: &str) -> PathBuf {
        self.dir.join(META_DIR).join("hits").join(name)
    }

    fn gen_root(&self) -> PathBuf {
        self.dir.join(META_DIR).join("gen")
    }

    /// Directory of generation `generation` of entry `name`.
    pub fn gen_dir(&self, name: &str, generation: u64) -> PathBuf {
        self.gen_root().join(format!("{name}.g{generation:08}"))
    }

    /// Fails unless the cache's own directories (`.pgcache`, `.pgcache/gen`) are real
    /// directories: a link put in their place could lead a lookup into someone else's cache.
    fn check_layout(&self) -> Result<()> {
        let meta = self.dir.join(META_DIR);
        for path in [meta.clone(), self.gen_root()] {
            let real = fs::symlink_metadata(&path)
                .map_err(Error::cache_io("checking", &path))?
                .file_type()
                .is_dir();
            if !real {
                return Err(Error::CacheCorrupt {
                    entry: path.display().to_string(),
                    reason: "is not a directory pgcache made (a link or a file); refusing to \
                             follow it"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// The current generation of `name` and its directory, if the entry exists.
    pub fn current(&self, name: &str) -> Result<Option<(u64, PathBuf)>> {
        self.check_layout()?;
        let link = self.entry_path(name);
        let target = match fs::read_link(&link) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                return Err(Error::CacheCorrupt {
                    entry: name.into(),
                    reason: "is not a pgcache entry link".into(),
                });
            }
            Err(e) => return Err(Error::cache_io("reading link", &link)(e)),
        };
        let generation = target
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_prefix(name))
            .and_then(|f| f.strip_prefix(".g"))
            .and_then(|g| g.parse::<u64>().ok())
            .ok_or_else(|| Error::CacheCorrupt {
                entry: name.into(),
                reason: format!("link points to {}, not a generation", target.display()),
            })?;
        let dir = self.gen_dir(name, generation);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(Error::CacheCorrupt {
                    entry: name.into(),
                    reason: format!("{} is not a directory pgcache made", dir.display()),
                });
            }
            Err(e) => return Err(Error::cache_io("checking", &dir)(e)),
        }
        Ok(Some((generation, dir)))
    }

    /// Creates an empty directory for a new generation, replacing any leftover of a crash.
    pub fn create_gen(&self, name: &str, generation: u64) -> Result<PathBuf> {
        let dir = self.gen_dir(name, generation);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(Error::cache_io("removing leftover", &dir))?;
        }
        fs::create_dir(&dir).map_err(Error::cache_io("creating", &dir))?;
        Ok(dir)
    }

    /// Publishes generation `generation` of `name` atomically and durably, then removes
    /// generations other than it and `keep_previous`.
    pub fn commit(&self, name: &str, generation: u64, keep_previous: Option<u64>) -> Result<()> {
        let gen_dir = self.gen_dir(name, generation);
        fsync_dir(&gen_dir)?;
        fsync_dir(&self.gen_root())?;
        let target = Path::new(META_DIR)
            .join("gen")
            .join(gen_dir.file_name().unwrap_or_default());
        let tmp = self
            .dir
            .join(format!(".{name}.link.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)
            .map_err(Error::cache_io("creating link", &tmp))?;
        let link = self.entry_path(name);
        fs::rename(&tmp, &link).map_err(Error::cache_io("publishing", &link))?;
        fsync_dir(&self.dir)?;
        self.remove_generations(name, |g| g != generation && Some(g) != keep_previous);
        self.remove_stale_links(name);
        Ok(())
    }

    /// Removes generation directories of `name` for which `remove` says so. Best effort: a
    /// failure is logged and left for the next commit.
    pub fn remove_generations(&self, name: &str, remove: impl Fn(u64) -> bool) {
        let prefix = format!("{name}.g");
        if self.check_layout().is_err() {
            return;
        }
        let Ok(read) = fs::read_dir(self.gen_root()) else {
            return;
        };
        for dirent in read.flatten() {
            let file_name = dirent.file_name();
            let Some(g) = file_name
                .to_str()
                .and_then(|f| f.strip_prefix(&prefix))
                .and_then(|g| g.parse::<u64>().ok())
            else {
                continue;
            };
            // Only real directories: a planted link is left alone, never followed.
            if remove(g)
                && dirent.file_type().is_ok_and(|t| t.is_dir())
                && let Err(e) = fs::remove_dir_all(dirent.path())
            {
                tracing::warn!(path = %dirent.path().display(), error = %e, "cannot remove an old generation");
            }
        }
    }

    /// Removes temporary links of `name` left by processes that died before publishing. The
    /// caller holds the entry's lock, so no live process is using one.
    fn remove_stale_links(&self, name: &str) {
        let prefix = format!(".{name}.link.");
        let Ok(read) = fs::read_dir(&self.dir) else {
            return;
        };
        for dirent in read.flatten() {
            if dirent
                .file_name()
                .to_str()
                .is_some_and(|f| f.starts_with(&prefix))
            {
                let _ = fs::remove_file(dirent.path());
            }
        }
    }

    /// Names of all entries: `cache_*` links that point into our generation directory.
    pub fn entries(&self) -> Result<Vec<String>> {
        self.check_layout()?;
        let mut names = Vec::new();
        let read = fs::read_dir(&self.dir).map_err(Error::cache_io("listing", &self.dir))?;
        for dirent in read.flatten() {
            let Some(name) = dirent.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !name.starts_with("cache_") {
                continue;
            }
            let Ok(target) = fs::read_link(dirent.path()) else {
                continue;
            };
            if is_generation_link(&target, &name) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Removes entry `name`: its link first (readers stop finding it), then its generations,
    /// hit counter and lock file.
    pub fn remove(&self, name: &str) -> Result<()> {
        let link = self.entry_path(name);
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::cache_io("removing", &link)(e)),
        }
        fsync_dir(&self.dir)?;
        self.remove_generations(name, |_| true);
        let _ = fs::remove_file(self.hits_path(name));
        Ok(())
    }
}

/// Whether `target` is exactly what pgcache links an entry to: `.pgcache/gen/<name>.g<digits>`,
/// with no `..`, no absolute path, nothing that could lead out of this cache directory.
fn is_generation_link(target: &Path, name: &str) -> bool {
    use std::path::Component::Normal;
    let parts: Vec<_> = target.components().collect();
    match parts.as_slice() {
        [Normal(meta), Normal(root), Normal(dir)] => {
            *meta == META_DIR
                && *root == "gen"
                && dir
                    .to_str()
                    .and_then(|d| d.strip_prefix(name))
                    .and_then(|d| d.strip_prefix(".g"))
                    .is_some_and(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => false,
    }
}

/// Makes a directory's entries durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::cache_io("syncing", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_swaps_generations_and_cleans_old_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert!(store.current("cache_x").unwrap().is_none());
        for g in 1..=3 {
            let dir = store.create_gen("cache_x", g).unwrap();
            fs::write(dir.join("part-1.parquet"), format!("gen {g}")).unwrap();
            store.commit("cache_x", g, g.checked_sub(1)).unwrap();
            assert_eq!(store.current("cache_x").unwrap().map(|c| c.0), Some(g));
            let through_link =
                fs::read_to_string(tmp.path().join("cache_x/part-1.parquet")).unwrap();
            assert_eq!(through_link, format!("gen {g}"));
        }
        assert!(!store.gen_dir("cache_x", 1).exists());
        assert!(store.gen_dir("cache_x", 2).exists());
        assert_eq!(store.entries().unwrap(), vec!["cache_x".to_string()]);
        store.remove("cache_x").unwrap();
        assert!(store.entries().unwrap().is_empty());
        assert!(!store.gen_dir("cache_x", 3).exists());
    }

    #[test]
    fn links_out_of_the_cache_are_not_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        for (name, target) in [
            (
                "cache_a",
                ".pgcache/gen/../../elsewhere/.pgcache/gen/cache_a.g00000001",
            ),
            ("cache_b", "/etc/.pgcache/gen/cache_b.g00000001"),
            ("cache_c", ".pgcache/gen/cache_other.g00000001"),
        ] {
            std::os::unix::fs::symlink(target, tmp.path().join(name)).unwrap();
        }
        assert!(store.entries().unwrap().is_empty());
        assert!(is_generation_link(
            Path::new(".pgcache/gen/cache_x.g00000007"),
            "cache_x"
        ));
    }

    #[test]
    fn foreign_files_are_not_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        fs::write(tmp.path().join("cache_notours.parquet"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", tmp.path().join("cache_link")).unwrap();
        assert!(store.entries().unwrap().is_empty());
    }
}
