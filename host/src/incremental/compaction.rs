//! Compaction of an incremental entry's parts: runs of small parts that are final (wholly
//! below the safe value) are merged once there are more of them than a threshold, so the
//! part count stays bounded while each row is rewritten only a few times.

use std::cmp::Ordering;
use std::path::PathBuf;

use crate::cache::generation::rewrite;
use crate::cache::manifest::Part;
use crate::cache::part::PartFormat;
use crate::cache::writer::{OrderSpec, WritePlan};
use crate::error::Result;
use crate::pg::order::OrderValue;

/// Merging runs of small final parts (entirely below the safe value) once there are more of
/// them than the threshold, so the part count stays bounded while each row is rewritten only a
/// few times. Also guarantees one part, possibly empty, so the entry keeps its schema on disk.
pub(crate) struct Compaction {
    pub dir: PathBuf,
    pub format: PartFormat,
    pub order: OrderSpec,
    pub entry: String,
    pub part_rows: u64,
    pub threshold: usize,
}

impl Compaction {
    pub fn run(
        &self,
        parts: Vec<Part>,
        mut next_seq: u64,
        safe: Option<&OrderValue>,
    ) -> Result<(Vec<Part>, u64)> {
        if parts.is_empty() {
            let plan = WritePlan {
                ensure_part: true,
                ..WritePlan::new(
                    self.dir.clone(),
                    next_seq,
                    self.format.clone(),
                    self.part_rows,
                )
            };
            let written = crate::cache::writer::write_all(plan, std::iter::empty())?;
            return Ok((written.parts, written.next_seq));
        }
        let small = |p: &Part| p.rows < self.part_rows / 4;
        let mergeable = |p: &Part| {
            small(p)
                && matches!((safe, &p.max), (Some(s), Some(max)) if max.compare(s) == Ordering::Less)
        };
        if parts.iter().filter(|p| mergeable(p)).count() < self.threshold {
            return Ok((parts, next_seq));
        }
        let mut out = Vec::with_capacity(parts.len());
        let mut group: Vec<Part> = Vec::new();
        for part in parts {
            let group_rows: u64 = group.iter().map(|p| p.rows).sum();
            if mergeable(&part) && group_rows + part.rows <= self.part_rows {
                group.push(part);
                continue;
            }
            next_seq = self.merge(&mut group, &mut out, next_seq)?;
            if mergeable(&part) {
                group.push(part);
            } else {
                out.push(part);
            }
        }
        next_seq = self.merge(&mut group, &mut out, next_seq)?;
        Ok((out, next_seq))
    }

    /// Replaces the parts of `group` (two or more) by one merged part appended to `out`.
    fn merge(&self, group: &mut Vec<Part>, out: &mut Vec<Part>, next_seq: u64) -> Result<u64> {
        if group.len() < 2 {
            out.append(group);
            return Ok(next_seq);
        }
        let sources: Vec<_> = group
            .iter()
            .map(|p| (self.dir.join(&p.file), self.entry.clone()))
            .collect();
        let merged = rewrite(
            &self.dir,
            next_seq,
            &self.format,
            &self.order,
            &sources,
            None,
            u64::MAX,
        )?;
        for p in group.drain(..) {
            let _ = std::fs::remove_file(self.dir.join(&p.file));
        }
        out.extend(merged.parts);
        Ok(merged.next_seq)
    }
}
