//! Response bodies written by blocking code (the Arrow IPC and text writers) on a blocking
//! thread and streamed in chunks over a bounded channel: a large result goes out as it is
//! encoded, with memory bounded by the channel, never encoded whole first.

use std::io::Write;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Bytes gathered before a chunk is handed to the connection.
const CHUNK_BYTES: usize = 64 << 10;
/// Chunks in flight between the writer and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A body that `write` produces on a blocking thread. When `write` fails, or the client goes
/// away, the body ends with an error: the client sees an aborted response, never a short one
/// that looks complete.
pub(crate) fn blocking_body<F>(write: F) -> Body
where
    F: FnOnce(&mut dyn Write) -> Result<(), String> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buffer: Vec::with_capacity(CHUNK_BYTES),
        };
        let written = write(&mut out).and_then(|()| out.flush().map_err(|e| e.to_string()));
        if let Err(message) = written {
            tracing::warn!(error = %message, "a streamed result ended early");
            let _ = tx.blocking_send(Err(std::io::Error::other(message)));
        }
    });
    let chunks = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Body::from_stream(chunks)
}

/// `Write` into the channel, a chunk at a time.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
