//! The accept loop. Each connection is served by hyper's HTTP/1 server with the axum router
//! as its service, and gets a kill switch: a handler that fires it makes the connection
//! future be dropped, which closes the socket without writing any response.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tower::Service;

/// Put into every request's extensions; `fire` closes the request's connection without
/// any response.
#[derive(Clone)]
pub(crate) struct KillSwitch(Arc<Notify>);

impl KillSwitch {
    pub(crate) fn fire(&self) {
        // notify_one stores a permit if the connection task is not waiting yet.
        self.0.notify_one();
    }
}

pub(crate) async fn serve(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
                Err(error) => {
                    // E.g. too many open files: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, router: Router) {
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let switch = KillSwitch(kill.clone());
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(switch.clone());
        let mut router = router.clone();
        async move {
            // Router is always ready (its poll_ready returns Ready), so call it directly.
            let response = router.call(request).await;
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        () = kill.notified() => {
            tracing::info!("connection dropped without response (injected fault)");
        }
    }
}
