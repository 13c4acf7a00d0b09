//! The write side of a fetch: a thread that takes record batches from the fetching task over a
//! bounded channel and encodes them into Parquet parts, so decoding and encoding run in
//! parallel and memory stays bounded by the channel, not by the result.
//!
//! For incremental entries it also decides where parts end, so that later refreshes replace
//! whole parts instead of rewriting them:
//! - at every *cut* value (the maxima of refreshes whose rows are not final yet): the rows from
//!   such a value on start a new part;
//! - before the trailing run of rows equal to the last value (the watermark), which a later
//!   refresh re-reads to catch rows that tie with it;
//! - at `part_rows`, but never inside a run of equal values.
//!
//! It also checks what it relies on: rows arrive in ascending order of the ordering column, and
//! NULLs there (which sort last) are counted, not written.

use std::path::PathBuf;
use std::thread::JoinHandle;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use super::interval;
use super::manifest::Part;
use super::part::{PartFormat, PartWriter};
use crate::error::{Error, Result};
use crate::pg::fetch::BatchSink;
use crate::pg::order::{OrderColumn, OrderValue};

/// Batches in flight between the fetching task and the writer thread.
const CHANNEL_BATCHES: usize = 4;

/// The ordering column of an incremental entry.
#[derive(Debug, Clone)]
pub(crate) struct OrderSpec {
    pub index: usize,
    pub name: String,
    /// An unconstrained `numeric` carried as text.
    pub numeric_text: bool,
}

/// What to write and how to cut it into parts.
#[derive(Debug, Clone)]
pub(crate) struct WritePlan {
    /// The (unpublished) generation directory.
    pub dir: PathBuf,
    pub first_seq: u64,
    pub format: PartFormat,
    pub order: Option<OrderSpec>,
    /// Ascending values at which new parts start.
    pub cuts: Vec<OrderValue>,
    /// Put the trailing run of rows equal to the last value into a part of its own.
    pub separate_last_run: bool,
    pub part_rows: u64,
    /// Write an empty part when no rows come, so the entry still has a schema on disk.
    pub ensure_part: bool,
    /// Stop with the cache quota's error once the parts take more bytes than this: a result
    /// that cannot fit is refused while it streams, not after all of it reached the disk.
    pub quota: Option<Quota>,
}

impl WritePlan {
    /// Parts of `format` from number `first_seq` in `dir`, at most `part_rows` rows each,
    /// in arrival order; set the other fields for ordered entries, cuts and the quota.
    pub fn new(dir: PathBuf, first_seq: u64, format: PartFormat, part_rows: u64) -> WritePlan {
        WritePlan {
            dir,
            first_seq,
            format,
            order: None,
            cuts: Vec::new(),
            separate_last_run: false,
            part_rows,
            ensure_part: false,
            quota: None,
        }
    }
}

/// What a writer may still add under the cache quota.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quota {
    /// The bytes the new parts may take at most.
    pub room: u64,
    /// The quota itself, for the error.
    pub limit: u64,
}

/// What the writer produced.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub parts: Vec<Part>,
    pub rows: u64,
    /// Rows with a NULL ordering value (not written).
    pub nulls: u64,
    pub next_seq: u64,
    /// The last ordering value written.
    pub last: Option<OrderValue>,
}

/// The sending half: what the fetch pushes batches into.
pub(crate) struct ChannelSink(mpsc::Sender<RecordBatch>);

impl BatchSink for ChannelSink {
    async fn push(&mut self, batch: RecordBatch) -> Result<()> {
        self.0.send(batch).await.map_err(|_| Error::CacheIo {
            action: "handing rows to",
            path: PathBuf::from("the Parquet writer"),
            source: std::io::Error::other("the writer stopped"),
        })
    }
}

/// A running writer thread.
pub(crate) struct WriterHandle(JoinHandle<Result<Written>>);

impl WriterHandle {
    /// Waits for the writer (after the sink was dropped) and returns what it wrote.
    pub async fn finish(self) -> Result<Written> {
        tokio::task::spawn_blocking(move || self.0.join())
            .await
            .map_err(|e| Error::CacheIo {
                action: "joining",
                path: "the Parquet writer".into(),
                source: std::io::Error::other(e),
            })?
            .unwrap_or_else(|_| {
                Err(Error::CacheIo {
                    action: "writing",
                    path: "the Parquet writer".into(),
                    source: std::io::Error::other("the writer thread panicked"),
                })
            })
    }
}

/// Starts a writer thread for `plan`.
pub(crate) fn spawn(plan: WritePlan) -> Result<(ChannelSink, WriterHandle)> {
    let (tx, mut rx) = mpsc::channel::<RecordBatch>(CHANNEL_BATCHES);
    let handle = std::thread::Builder::new()
        .name("pgcache-writer".into())
        .spawn(move || {
            let mut splitter = Splitter::new(plan);
            while let Some(batch) = rx.blocking_recv() {
                splitter.push(batch)?;
            }
            splitter.finish()
        })
        .map_err(Error::cache_io(
            "starting the writer thread for",
            PathBuf::from("."),
        ))?;
    Ok((ChannelSink(tx), WriterHandle(handle)))
}

/// Runs a plan over batches already at hand, on the calling thread (compaction, splits).
pub(crate) fn write_all(
    plan: WritePlan,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<Written> {
    let mut splitter = Splitter::new(plan);
    for batch in batches {
        splitter.push(batch?)?;
    }
    splitter.finish()
}

struct Splitter {
    plan: WritePlan,
    current: Option<PartWriter>,
    current_last: Option<OrderValue>,
    seq: u64,
    next_cut: usize,
    held: Vec<RecordBatch>,
    held_value: Option<OrderValue>,
    out: Written,
}

impl Splitter {
    fn new(plan: WritePlan) -> Splitter {
        let seq = plan.first_seq;
        Splitter {
            plan,
            current: None,
            current_last: None,
            seq,
            next_cut: 0,
            held: Vec::new(),
            held_value: None,
            out: Written::default(),
        }
    }

    fn schema(&self) -> SchemaRef {
        self.plan.format.disk_schema.clone()
    }

    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let Some(order) = self.plan.order.clone() else {
            return self.emit(&batch);
        };
        let batch = self.check_order(batch, &order)?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if !self.plan.separate_last_run {
            return self.emit(&batch);
        }
        let col = OrderColumn::new(batch.column(order.index).as_ref(), order.numeric_text);
        let n = batch.num_rows();
        let last = col.value(n - 1);
        let run_start = col.lower_bound(0, n, &last);
        let mut from = 0;
        if let Some(held_value) = self.held_value.clone() {
            let same = col.upper_bound(0, n, &held_value);
            if same == n {
                self.held.push(batch);
                return Ok(());
            }
            if same > 0 {
                self.held.push(batch.slice(0, same));
            }
            self.flush_held()?;
            from = same;
        }
        if run_start > from {
            self.emit(&batch.slice(from, run_start - from))?;
        }
        self.held.push(batch.slice(run_start, n - run_start));
        self.held_value = Some(last);
        Ok(())
    }

    /// Drops NULL ordering values (counting them) and checks ascending order.
    fn check_order(&mut self, batch: RecordBatch, order: &OrderSpec) -> Result<RecordBatch> {
        let col = OrderColumn::new(batch.column(order.index).as_ref(), order.numeric_text);
        let n = batch.num_rows();
        let mut valid = n;
        if batch.column(order.index).null_count() > 0 {
            valid = (0..n).position(|i| col.is_null(i)).unwrap_or(n);
            if (valid..n).any(|i| !col.is_null(i)) {
                return Err(self.out_of_order(order));
            }
            self.out.nulls += (n - valid) as u64;
        } else if self.out.nulls > 0 && n > 0 {
            return Err(self.out_of_order(order));
        }
        if valid == 0 {
            return Ok(batch.slice(0, 0));
        }
        if self
            .out
            .last
            .as_ref()
            .is_some_and(|p| col.compare(0, p).is_lt())
            || (1..valid).any(|i| col.compare_rows(i, i - 1).is_lt())
        {
            return Err(self.out_of_order(order));
        }
        self.out.last = Some(col.value(valid - 1));
        Ok(if valid == n {
            batch
        } else {
            batch.slice(0, valid)
        })
    }

    fn out_of_order(&self, order: &OrderSpec) -> Error {
        Error::Decode {
            column: order.name.clone(),
            message: "rows did not arrive in ascending order of the ordering column; \
                      pgcache orders them with ORDER BY, so the query must not change the column's type or order"
                .into(),
        }
    }

    fn flush_held(&mut self) -> Result<()> {
        for batch in std::mem::take(&mut self.held) {
            self.emit(&batch)?;
        }
        self.held_value = None;
        Ok(())
    }

    /// Writes rows to the current part, starting new parts at cuts and at the size limit.
    fn emit(&mut self, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        let order = self.plan.order.clone();
        let col = order
            .as_ref()
            .map(|o| OrderColumn::new(batch.column(o.index).as_ref(), o.numeric_text));
        let mut i = 0;
        while i < n {
            let mut end = n;
            if let (Some(col), Some(cut)) = (&col, self.plan.cuts.get(self.next_cut)) {
                let at = col.lower_bound(i, n, cut);
                if at == i {
                    self.rotate()?;
                    while self
                        .plan
                        .cuts
                        .get(self.next_cut)
                        .is_some_and(|c| col.compare(i, c).is_ge())
                    {
                        self.next_cut += 1;
                    }
                    continue;
                }
                end = at;
            }
            let written = self.current.as_ref().map_or(0, PartWriter::rows);
            if written >= self.plan.part_rows {
                match &col {
                    // Never split a run of equal values between parts.
                    Some(col)
                        if self
                            .current_last
                            .as_ref()
                            .is_some_and(|l| col.compare(i, l).is_eq()) =>
                    {
                        end = col.upper_bound(i, end, &col.value(i));
                    }
                    _ => {
                        self.rotate()?;
                        continue;
                    }
                }
            } else {
                let room = (self.plan.part_rows - written) as usize;
                if end - i > room {
                    match &col {
                        None => end = i + room,
                        Some(col) => {
                            // Cut before the run that straddles the limit, unless this part
                            // would then get nothing or the run continues this part's last one.
                            let v = col.value(i + room);
                            let before = col.lower_bound(i, end, &v);
                            let continues = self
                                .current_last
                                .as_ref()
                                .is_some_and(|l| col.compare(i, l).is_eq());
                            if before > i {
                                end = before;
                            } else if written > 0 && !continues {
                                self.rotate()?;
                                continue;
                            } else {
                                end = col.upper_bound(i, end, &v);
                            }
                        }
                    }
                }
            }
            let slice = batch.slice(i, end - i);
            let bounds = col.as_ref().map(|c| (c.value(i), c.value(end - 1)));
            self.current_last = bounds.as_ref().map(|b| b.1.clone());
            let disk = interval::to_disk(&slice, &self.schema())?;
            self.writer()?.write(&disk, bounds)?;
            self.out.rows += slice.num_rows() as u64;
            self.check_room()?;
            i = end;
        }
        Ok(())
    }

    /// Fails once the parts written and the one being written take more than the room left.
    fn check_room(&self) -> Result<()> {
        let Some(quota) = self.plan.quota else {
            return Ok(());
        };
        let closed: u64 = self.out.parts.iter().map(|p| p.bytes).sum();
        let open = self.current.as_ref().map_or(0, PartWriter::bytes);
        if closed + open > quota.room {
            return Err(Error::LimitExceeded {
                what: "cache quota (bytes)",
                limit: quota.limit,
            });
        }
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut PartWriter> {
        if self.current.is_none() {
            self.current = Some(PartWriter::create(
                &self.plan.dir,
                self.seq,
                &self.plan.format,
            )?);
            self.seq += 1;
        }
        Ok(self.current.as_mut().expect("just created"))
    }

    fn rotate(&mut self) -> Result<()> {
        self.current_last = None;
        if let Some(w) = self.current.take() {
            self.out.parts.push(w.close()?);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Written> {
        if !self.held.is_empty() {
            self.rotate()?;
            self.flush_held()?;
        }
        self.rotate()?;
        if self.out.parts.is_empty() && self.plan.ensure_part {
            self.writer()?;
            self.rotate()?;
        }
        self.out.next_seq = self.seq;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::entry::OpenPart;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use std::sync::Arc;

    fn plan(dir: &std::path::Path, cuts: Vec<i64>, part_rows: u64) -> WritePlan {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        WritePlan {
            dir: dir.to_path_buf(),
            first_seq: 1,
            format: PartFormat::new(&schema, "k", "q", Some(0)),
            order: Some(OrderSpec {
                index: 0,
                name: "id".into(),
                numeric_text: false,
            }),
            cuts: cuts.into_iter().map(OrderValue::Int).collect(),
            separate_last_run: true,
            part_rows,
            ensure_part: true,
            quota: None,
        }
    }

    fn batch(values: Vec<Option<i64>>) -> Result<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        Ok(RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).unwrap())
    }

    fn read(dir: &std::path::Path, part: &Part) -> Vec<i64> {
        let reader = OpenPart::open(&dir.join(&part.file), "t")
            .unwrap()
            .reader(None, 1024)
            .unwrap();
        reader
            .flat_map(|b| {
                b.unwrap()
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn parts_end_at_cuts_at_the_size_limit_and_before_the_last_run() {
        let tmp = tempfile::tempdir().unwrap();
        let batches = vec![
            batch(vec![Some(1), Some(2), Some(2), Some(3)]),
            batch(vec![Some(3), Some(3), Some(5), Some(6), Some(7)]),
            batch(vec![Some(9), Some(9)]),
            batch(vec![Some(9), None, None]),
        ];
        let out = write_all(plan(tmp.path(), vec![3, 6], 2), batches).unwrap();
        let parts: Vec<Vec<i64>> = out.parts.iter().map(|p| read(tmp.path(), p)).collect();
        assert_eq!(
            parts,
            vec![
                vec![1],
                vec![2, 2],
                vec![3, 3, 3],
                vec![5],
                vec![6, 7],
                vec![9, 9, 9]
            ]
        );
        assert_eq!(out.nulls, 2);
        assert_eq!(out.rows, 12);
        assert_eq!(out.parts[2].min, Some(OrderValue::Int(3)));
        assert_eq!(out.parts[5].max, Some(OrderValue::Int(9)));
        assert_eq!(out.next_seq, 7);
    }

    #[test]
    fn out_of_order_rows_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write_all(
            plan(tmp.path(), vec![], 100),
            vec![batch(vec![Some(2)]), batch(vec![Some(1)])],
        )
        .unwrap_err();
        assert!(err.to_string().contains("ascending order"), "{err}");
        let err = write_all(
            plan(tmp.path(), vec![], 100),
            vec![batch(vec![Some(2), None, Some(3)])],
        )
        .unwrap_err();
        assert!(err.to_string().contains("ascending order"), "{err}");
    }

    #[test]
    fn the_quota_stops_a_result_while_it_streams() {
        let tmp = tempfile::tempdir().unwrap();
        let mut plan = plan(tmp.path(), vec![], 1000);
        plan.separate_last_run = false;
        plan.quota = Some(Quota {
            room: 64 << 10,
            limit: 1 << 20,
        });
        let taken = std::cell::Cell::new(0);
        // An endless stream of distinct values: only the quota can end it.
        let endless = (0i64..).map(|i| {
            taken.set(taken.get() + 1);
            batch((i * 1000..(i + 1) * 1000).map(|v| Some(v * 7919)).collect())
        });
        let err = write_all(plan, endless).unwrap_err();
        assert!(err.to_string().contains("cache quota (bytes)"), "{err}");
        // 64 KiB of about 8 bytes a row: it stopped after about 8 batches, not at the end.
        assert!(taken.get() < 100, "read {} batches", taken.get());
    }

    #[test]
    fn no_rows_still_leave_a_part_with_the_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let out = write_all(plan(tmp.path(), vec![], 100), Vec::new()).unwrap();
        assert_eq!(out.parts.len(), 1);
        assert_eq!(out.parts[0].rows, 0);
        assert!(read(tmp.path(), &out.parts[0]).is_empty());
    }
}
