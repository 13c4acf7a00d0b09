//! The accept loop of `pgcache serve`, over plain TCP or TLS: hyper's HTTP/1 server over the
//! router (what `axum::serve` runs without axum's `http2` feature), but with half-closes
//! allowed. The wasmtime CLI's `wasi:http`
//! client shuts down its write side as soon as a request is sent; a server that takes that
//! for a closed connection drops the answer, and the plugin sees "connection reset".

use std::future::Future;

use axum::Router;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections
/// finish their requests. The listener sets up each connection (TCP_NODELAY, TLS).
pub(crate) async fn serve<L: axum::serve::Listener>(
    mut listener: L,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new();
    builder.half_close(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Accepting never fails: the listener waits out errors (no descriptors left ...).
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
