//! The progress line of long fetches: rows, MB and rows/s on a terminal, nothing when piped.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pgcache::Progress;

/// Shows `progress` on stderr until dropped, if stderr is a terminal.
pub struct ProgressLine {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressLine {
    pub fn start(progress: Arc<Progress>) -> ProgressLine {
        if !std::io::stderr().is_terminal() {
            return ProgressLine {
                bar: None,
                ticker: None,
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let shown = bar.clone();
        let started = Instant::now();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let rows = progress.rows();
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                shown.set_message(format!(
                    "{rows} rows, {:.1} MB, {:.0} rows/s",
                    progress.bytes() as f64 / 1e6,
                    rows as f64 / secs
                ));
                shown.tick();
            }
        });
        ProgressLine {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
