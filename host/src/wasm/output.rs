//! Where a guest's stdout and stderr go: the host's own (written asynchronously, so a stalled
//! reader never stops the wall-clock limit), memory, or a stream another task reads as the
//! guest writes (what `pgcache serve` sends to its client).

use std::sync::{Arc, Mutex};

use tokio::io::DuplexStream;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::AsyncStdoutStream;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Bytes a guest may have in flight to an inherited or streamed stdout or stderr.
const STDIO_BUDGET: usize = 64 << 10;

/// Most bytes of captured output kept per stream.
const CAPTURE_BYTES: usize = 64 << 20;

/// Where a guest's standard output or error goes.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Output {
    /// The host's own stdout/stderr.
    #[default]
    Inherit,
    /// Kept in memory (up to 64 MiB) and returned in [`super::RunOutcome`].
    Capture,
    /// Written to a stream whose other end [`Output::stream`] returned.
    Stream(StreamOutput),
}

impl PartialEq for Output {
    fn eq(&self, other: &Output) -> bool {
        match (self, other) {
            (Output::Inherit, Output::Inherit) | (Output::Capture, Output::Capture) => true,
            (Output::Stream(a), Output::Stream(b)) => Arc::ptr_eq(&a.0, &b.0),
            _ => false,
        }
    }
}

/// The writing end of a streamed output, taken by the run that uses it (once).
#[derive(Debug, Clone)]
pub struct StreamOutput(Arc<Mutex<Option<DuplexStream>>>);

impl Output {
    /// A streamed output and the reader of what the guest writes to it; the reader ends
    /// when the run does. The guest waits (asynchronously) while 64 KiB are unread.
    pub fn stream() -> (Output, DuplexStream) {
        // A duplex, not a simplex: dropping the guest's end is the reader's end of file.
        let (reader, writer) = tokio::io::duplex(STDIO_BUDGET);
        let output = Output::Stream(StreamOutput(Arc::new(Mutex::new(Some(writer)))));
        (output, reader)
    }
}

/// Which standard stream.
#[derive(Clone, Copy)]
pub(crate) enum Stdio {
    Out,
    Err,
}

/// Connects `output` as the guest's `which` stream; returns the capture pipe, if capturing.
pub(crate) fn connect(
    wasi: &mut WasiCtxBuilder,
    which: Stdio,
    output: &Output,
) -> Option<MemoryOutputPipe> {
    let set = |wasi: &mut WasiCtxBuilder, s: AsyncStdoutStream| match which {
        Stdio::Out => {
            wasi.stdout(s);
        }
        Stdio::Err => {
            wasi.stderr(s);
        }
    };
    match output {
        Output::Capture => {
            let pipe = MemoryOutputPipe::new(CAPTURE_BYTES);
            match which {
                Stdio::Out => wasi.stdout(pipe.clone()),
                Stdio::Err => wasi.stderr(pipe.clone()),
            };
            Some(pipe)
        }
        // Through tokio (its blocking pool for the host's stdio): a guest whose reader
        // stalls waits asynchronously, and the wall-clock limit still fires.
        Output::Inherit => {
            match which {
                Stdio::Out => set(
                    wasi,
                    AsyncStdoutStream::new(STDIO_BUDGET, tokio::io::stdout()),
                ),
                Stdio::Err => set(
                    wasi,
                    AsyncStdoutStream::new(STDIO_BUDGET, tokio::io::stderr()),
                ),
            }
            None
        }
        Output::Stream(stream) => {
            let writer = stream
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            match writer {
                Some(w) => set(wasi, AsyncStdoutStream::new(STDIO_BUDGET, w)),
                // Already used by another run: the guest's output goes nowhere.
                None => set(
                    wasi,
                    AsyncStdoutStream::new(STDIO_BUDGET, tokio::io::sink()),
                ),
            }
            None
        }
    }
}
