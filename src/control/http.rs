//! `--metrics-listen`: a minimal HTTP/1.1 responder for `GET /metrics`, on one thread of its
//! own, with no async runtime. One connection at a time is enough for a scraper or two; every
//! request is answered and closed, and a request must arrive whole, small and soon, so that a
//! slow or hostile client holds the thread for at most `REQUEST_DEADLINE`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

/// What `GET /metrics` answers, asked afresh for every request.
pub(crate) type Body = Arc<dyn Fn() -> String + Send + Sync>;

/// The most a request's head may take: a scraper's is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// How long a request may take to arrive, from the connection on.
const REQUEST_DEADLINE: Duration = Duration::from_secs(1);
/// How long a client may take to take the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// After an error answer, how long what the client still sends is read and thrown away, so that
/// closing with unread data (which resets the connection) does not lose the answer.
const DRAIN_TIME: Duration = Duration::from_millis(100);
/// A failed accept (out of descriptors, say) is tried again after this, not at once.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

/// The listening thread. Dropped, it stops taking connections.
pub(crate) struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl MetricsServer {
    /// Listens on `addr` (port 0: any free port) and serves from a thread of its own. An address
    /// that cannot be had is an error named after it: `metrics 127.0.0.1:9187: ...`.
    pub(crate) fn start(addr: SocketAddr, body: Body) -> anyhow::Result<MetricsServer> {
        let name = format!("metrics {addr}");
        let listener = TcpListener::bind(addr).with_context(|| name.clone())?;
        let addr = listener.local_addr().with_context(|| name.clone())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        thread::Builder::new()
            .name("bpipe-metrics".into())
            .spawn(move || serve(&listener, &body, &stopping))
            .context("cannot start the metrics thread")?;
        Ok(MetricsServer { addr, stop })
    }

    #[cfg(test)]
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    /// Stops the thread at its next connection, and makes one, so that it stops now. The thread
    /// is not waited for: it may be busy with a slow client, and the run must not wait on that.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, WRITE_TIMEOUT);
    }
}

fn serve(listener: &TcpListener, body: &Body, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match stream {
            Ok(stream) => answer(stream, body),
            Err(_) => thread::sleep(ACCEPT_PAUSE),
        }
    }
}

/// Why a request gets no 200.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Timeout,
}

/// Answers one connection and closes it. A client that goes away is its own problem: nothing
/// here is reported.
fn answer(mut stream: TcpStream, body: &Body) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let outcome = read_head(&mut stream).and_then(|head| route(&head));
    let response = match &outcome {
        Ok(head_only) => response("200 OK", METRICS_TYPE, &body(), *head_only),
        Err(refusal) => refused(refusal),
    };
    let _ = stream.write_all(&response);
    let _ = stream.shutdown(Shutdown::Write);
    if outcome.is_err() {
        drain(&mut stream);
    }
}

/// The request's head, up to the blank line, read within the deadline.
fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, Refusal> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(Refusal::BadRequest);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(Refusal::Timeout);
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err(Refusal::BadRequest),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Refusal::Timeout),
        }
    }
}

/// Where the blank line that ends a head starts (lines end in CRLF, or in LF alone, which
/// RFC 9112 lets a server accept).
fn head_end(data: &[u8]) -> Option<usize> {
    let crlf = data.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = data.windows(2).position(|w| w == b"\n\n");
    crlf.into_iter().chain(lf).min()
}

/// What the request line asks for: `Ok(head_only)` for the metrics.
fn route(head: &[u8]) -> Result<bool, Refusal> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| Refusal::BadRequest)?;
    let mut words = line.strip_suffix('\r').unwrap_or(line).split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(Refusal::BadRequest);
    };
    let token = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_graphic());
    if !token(method) || !target.starts_with('/') || !token(target) {
        return Err(Refusal::BadRequest);
    }
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(Refusal::BadRequest);
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        (_, p) if p != "/metrics" => Err(Refusal::NotFound),
        ("GET", _) => Ok(false),
        ("HEAD", _) => Ok(true),
        _ => Err(Refusal::MethodNotAllowed),
    }
}

fn response(status: &str, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if status.starts_with("405") {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    if !head_only {
        out.push_str(body);
    }
    out.into_bytes()
}

fn refused(refusal: &Refusal) -> Vec<u8> {
    let (status, why) = match refusal {
        Refusal::BadRequest => ("400 Bad Request", "bad request"),
        Refusal::NotFound => ("404 Not Found", "not found: bpipe serves GET /metrics"),
        Refusal::MethodNotAllowed => ("405 Method Not Allowed", "only GET and HEAD /metrics"),
        Refusal::Timeout => ("408 Request Timeout", "the request did not come in time"),
    };
    response(status, TEXT_TYPE, &format!("{why}\n"), false)
}

/// Reads what the client still sends, for a short while, and throws it away.
fn drain(stream: &mut TcpStream) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(1..) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(0) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn server() -> (MetricsServer, Arc<AtomicU64>) {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&calls);
        let body: Body = Arc::new(move || {
            let n = counted.fetch_add(1, Ordering::Relaxed) + 1;
            format!("bpipe_up 1\nscrape {n}\n")
        });
        let addr = "127.0.0.1:0".parse().unwrap();
        (MetricsServer::start(addr, body).unwrap(), calls)
    }

    /// Sends `request` and reads the whole answer.
    fn ask(server: &MetricsServer, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    fn status(answer: &str) -> &str {
        answer.lines().next().unwrap_or_default()
    }

    #[test]
    fn get_metrics_is_the_fresh_body_in_the_exposition_format() {
        let (server, calls) = server();
        for n in 1..=2 {
            let answer = ask(&server, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
            let (head, body) = answer.split_once("\r\n\r\n").unwrap();
            assert_eq!(status(head), "HTTP/1.1 200 OK");
            assert!(
                head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
                "{head}"
            );
            assert!(head.contains(&format!("\r\nContent-Length: {}\r", body.len())));
            assert!(head.contains("\r\nConnection: close"));
            assert_eq!(body, format!("bpipe_up 1\nscrape {n}\n"));
        }
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        // A query string, HTTP/1.0 and bare LF line ends are fine; HEAD has no body.
        let answer = ask(&server, b"GET /metrics?x=1 HTTP/1.0\n\n");
        assert!(answer.ends_with("scrape 3\n"), "{answer}");
        let answer = ask(&server, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(status(&answer), "HTTP/1.1 200 OK");
        assert!(answer.ends_with("\r\n\r\n"), "{answer}");
    }

    #[test]
    fn other_paths_methods_and_bad_requests_are_refused() {
        let (server, calls) = server();
        for (request, want) in [
            (&b"GET / HTTP/1.1\r\n\r\n"[..], "HTTP/1.1 404 Not Found"),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
            (
                b"POST /metrics HTTP/1.1\r\n\r\n",
                "HTTP/1.1 405 Method Not Allowed",
            ),
            (b"hello\r\n\r\n", "HTTP/1.1 400 Bad Request"),
            (b"GET /metrics HTTP/2\r\n\r\n", "HTTP/1.1 400 Bad Request"),
            (
                b"GET  /metrics HTTP/1.1\r\n\r\n",
                "HTTP/1.1 400 Bad Request",
            ),
            (b"GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"),
            (b"GET /metrics HTTP/1.1\r\n", "HTTP/1.1 400 Bad Request"),
            (
                b"\xff /metrics HTTP/1.1\r\n\r\n",
                "HTTP/1.1 400 Bad Request",
            ),
        ] {
            let mut stream = TcpStream::connect(server.local_addr()).unwrap();
            stream.write_all(request).unwrap();
            // A request cut short ends with the client's end of the connection.
            stream.shutdown(Shutdown::Write).unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            assert_eq!(
                status(&answer),
                want,
                "{:?}",
                String::from_utf8_lossy(request)
            );
        }
        let answer = ask(&server, b"PUT /metrics HTTP/1.1\r\n\r\n");
        assert!(answer.contains("\r\nAllow: GET, HEAD\r\n"), "{answer}");
        assert_eq!(calls.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_head_too_large_is_refused() {
        let (server, _) = server();
        let mut request = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        request.resize(4 * MAX_HEAD, b'a');
        let answer = ask(&server, &request);
        assert_eq!(status(&answer), "HTTP/1.1 400 Bad Request");
    }

    /// One client that sends its request a byte at a time, slower than the deadline, holds the
    /// thread no longer than the deadline: a scraper that comes next is answered.
    #[test]
    fn a_slow_client_cannot_hold_the_server() {
        let (server, _) = server();
        let mut slow = TcpStream::connect(server.local_addr()).unwrap();
        let start = Instant::now();
        let dripping = thread::spawn(move || {
            for byte in b"GET /metrics HTTP/1.1\r\n\r\n" {
                if slow.write_all(&[*byte]).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(300));
            }
            let mut answer = String::new();
            let _ = slow.read_to_string(&mut answer);
            answer
        });
        let answer = ask(&server, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(status(&answer), "HTTP/1.1 200 OK");
        assert!(
            start.elapsed() < REQUEST_DEADLINE * 4,
            "{:?}",
            start.elapsed()
        );
        let slow_answer = dripping.join().unwrap();
        assert!(
            slow_answer.is_empty() || status(&slow_answer) == "HTTP/1.1 408 Request Timeout",
            "{slow_answer}"
        );
    }

    #[test]
    fn an_address_in_use_is_an_error_named_after_it() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let body: Body = Arc::new(String::new);
        let error = MetricsServer::start(addr, body).err().unwrap();
        assert_eq!(
            crate::supervise::outcome::error_line(&error),
            format!("bpipe: metrics {addr}: Address already in use")
        );
    }

    #[test]
    fn a_dropped_server_stops_listening() {
        let (server, _) = server();
        let addr = server.local_addr();
        drop(server);
        let stopped = (0..500).any(|_| {
            thread::sleep(Duration::from_millis(10));
            TcpListener::bind(addr).is_ok()
        });
        assert!(stopped, "{addr} is still taken");
    }
}
