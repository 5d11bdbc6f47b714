//! The `/metrics` endpoint: HTTP/1.1 on one address, GET `/metrics` only, a few
//! connections at a time, each with deadlines, so a stuck or hostile client cannot
//! hold the daemon's descriptors or memory.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// Connections served at once; more are closed as they arrive. A Prometheus server or
/// two, and someone with curl, fit.
const MAX_CONNECTIONS: usize = 8;
/// A request's head must arrive within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A kept-alive connection is closed after this; Prometheus opens another.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A serving endpoint; dropping it stops the server.
pub struct Endpoint {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

/// Binds `addr`; the error names the key.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("metrics.listen {addr}: {e}"))
}

/// Serves `metrics` on `listener` until the returned endpoint is dropped.
pub fn serve(listener: TcpListener, metrics: Metrics) -> Endpoint {
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let stop = CancellationToken::new();
    let task = tokio::spawn(accept(listener, metrics, stop.clone()));
    tracing::info!(%addr, "serving metrics at http://{addr}/metrics");
    Endpoint { addr, stop, task }
}

async fn accept(listener: TcpListener, metrics: Metrics, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(connection(stream, metrics.clone(), permit, stop.clone()));
                }
                // Closing at once tells the client to come back later.
                Err(_) => drop(stream),
            },
            // Out of descriptors, most likely: wait rather than spin.
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(
    stream: TcpStream,
    metrics: Metrics,
    _permit: OwnedSemaphorePermit,
    stop: CancellationToken,
) {
    let service = service_fn(move |request| {
        let answer = answer(&request, &metrics);
        async move { Ok::<_, Infallible>(answer) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = served => {}
        () = tokio::time::sleep(CONNECTION_LIFETIME) => {}
        () = stop.cancelled() => {}
    }
}

fn answer<B>(request: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "only /metrics is served here\n");
    }
    if request.method() != Method::GET {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "/metrics answers GET only\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return response;
    }
    // Prometheus asks for OpenMetrics; anything else gets the classic format.
    let openmetrics = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (body, kind) = if openmetrics {
        (metrics.encode(), OPENMETRICS)
    } else {
        (metrics.encode_classic(), CLASSIC)
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
    response
}
