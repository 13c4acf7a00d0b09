//! A streaming parser of `COPY ... TO STDOUT (FORMAT binary)` output.
//!
//! The server sends the stream in `CopyData` messages, usually one row each, but nothing in the
//! protocol ties rows to messages. The parser decodes every complete row straight from the
//! message it arrived in and carries only an incomplete tail over to the next one.

use super::decode::BatchBuilder;
use crate::error::{Error, Result};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Parser state across messages.
#[derive(Debug, Default)]
pub(crate) struct CopyParser {
    /// Bytes of a row (or of the header) split across messages.
    pending: Vec<u8>,
    header_done: bool,
    finished: bool,
}

impl CopyParser {
    /// Decodes the complete rows in `chunk` into `rows`; whenever `rows` fills up, its batch is
    /// pushed to `ready`.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        rows: &mut BatchBuilder,
        ready: &mut Vec<arrow::record_batch::RecordBatch>,
    ) -> Result<()> {
        if self.pending.is_empty() {
            let used = self.parse(chunk, rows, ready)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut data = std::mem::take(&mut self.pending);
            data.extend_from_slice(chunk);
            let used = self.parse(&data, rows, ready)?;
            data.drain(..used);
            self.pending = data;
        }
        Ok(())
    }

    /// Checks that the stream ended cleanly, after the last message.
    pub fn finish(&self) -> Result<()> {
        if !self.finished || !self.pending.is_empty() {
            return Err(protocol("the COPY stream ended in the middle of a row"));
        }
        Ok(())
    }

    /// Parses as much of `data` as forms whole rows; returns the bytes used.
    fn parse(
        &mut self,
        data: &[u8],
        rows: &mut BatchBuilder,
        ready: &mut Vec<arrow::record_batch::RecordBatch>,
    ) -> Result<usize> {
        let mut pos = 0;
        if !self.header_done {
            if data.len() < 19 {
                return Ok(0);
            }
            if &data[..11] != SIGNATURE {
                return Err(protocol(
                    "the COPY stream does not start with the binary signature",
                ));
            }
            let ext = be_i32(&data[15..19]) as usize;
            if data.len() < 19 + ext {
                return Ok(0);
            }
            pos = 19 + ext;
            self.header_done = true;
        }
        let columns = rows.columns();
        while pos + 2 <= data.len() {
            if self.finished {
                return Err(protocol("data after the end of the COPY stream"));
            }
            let count = i16::from_be_bytes([data[pos], data[pos + 1]]);
            if count == -1 {
                self.finished = true;
                pos += 2;
                continue;
            }
            if count as usize != columns {
                return Err(protocol(&format!(
                    "a COPY row has {count} fields, expected {columns}"
                )));
            }
            // First pass: is the whole row here?
            let mut end = pos + 2;
            let mut complete = true;
            for _ in 0..columns {
                if end + 4 > data.len() {
                    complete = false;
                    break;
                }
                let len = be_i32(&data[end..end + 4]);
                end += 4;
                if len > 0 {
                    end += len as usize;
                }
                if end > data.len() {
                    complete = false;
                    break;
                }
            }
            if !complete {
                break;
            }
            // Second pass: decode.
            let mut at = pos + 2;
            for index in 0..columns {
                let len = be_i32(&data[at..at + 4]);
                at += 4;
                if len < 0 {
                    rows.append(index, None)?;
                } else {
                    let len = len as usize;
                    rows.append(index, Some(&data[at..at + len]))?;
                    at += len;
                }
            }
            pos = end;
            if rows.end_row() {
                ready.push(rows.finish()?);
            }
        }
        Ok(pos)
    }
}

#[inline]
fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn protocol(message: &str) -> Error {
    Error::Decode {
        column: "(COPY stream)".into(),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::types::{ColumnKind, ColumnSpec};
    use arrow::array::AsArray;
    use arrow::datatypes::{Int64Type, Schema};
    use std::sync::Arc;

    fn stream(rows: &[(i64, Option<&str>)]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        for (id, text) in rows {
            out.extend_from_slice(&2i16.to_be_bytes());
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&id.to_be_bytes());
            match text {
                Some(t) => {
                    out.extend_from_slice(&(t.len() as i32).to_be_bytes());
                    out.extend_from_slice(t.as_bytes());
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn builder() -> BatchBuilder {
        let columns = vec![
            ColumnSpec {
                name: "id".into(),
                pg_type: "int8".into(),
                kind: ColumnKind::Int8,
                as_text: false,
            },
            ColumnSpec {
                name: "t".into(),
                pg_type: "text".into(),
                kind: ColumnKind::Text,
                as_text: false,
            },
        ];
        let schema = Arc::new(Schema::new(
            columns.iter().map(ColumnSpec::field).collect::<Vec<_>>(),
        ));
        BatchBuilder::new(schema, columns, 2)
    }

    #[test]
    fn rows_split_across_any_chunking_decode_the_same() {
        let data = stream(&[(1, Some("a")), (2, None), (3, Some("")), (4, Some("dddd"))]);
        for chunk_size in [1, 2, 3, 7, 19, 20, 1000] {
            let mut parser = CopyParser::default();
            let mut rows = builder();
            let mut ready = Vec::new();
            for chunk in data.chunks(chunk_size) {
                parser.feed(chunk, &mut rows, &mut ready).unwrap();
            }
            parser.finish().unwrap();
            assert_eq!(rows.rows(), 0, "chunk size {chunk_size}");
            assert_eq!(ready.len(), 2);
            let ids: Vec<i64> = ready
                .iter()
                .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                .collect();
            assert_eq!(ids, [1, 2, 3, 4]);
            let texts = ready[1].column(1).as_string::<i32>();
            assert_eq!(texts.value(0), "");
            assert!(ready[0].column(1).is_null(1));
        }
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let data = stream(&[(1, Some("a"))]);
        let mut parser = CopyParser::default();
        let mut rows = builder();
        let mut ready = Vec::new();
        parser
            .feed(&data[..data.len() - 5], &mut rows, &mut ready)
            .unwrap();
        assert!(parser.finish().is_err());
    }
}
