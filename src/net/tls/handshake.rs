//! Driving a handshake over a blocking TCP socket, bounded by a deadline and ended early by a
//! stop, and the words of its failures.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::{AlertDescription, CertificateError, Connection, Error, InvalidMessage, IoState};

use crate::io::sys::describe;

/// Why a handshake did not complete.
#[derive(Debug)]
pub(super) enum Failure {
    Tls(Error),
    Io(io::Error),
    Closed,
    TimedOut,
}

/// Which end of the handshake we are, for the words of a failure.
pub(super) enum Role<'a> {
    Listener,
    Connector { host: &'a str, presents_cert: bool },
}

/// Reads and writes records until `done` holds; `Ok(false)` when `stop` was raised first. A
/// stop wakes this thread with a signal, so a wait that returns EINTR looks at `stop` again.
pub(super) fn drive(
    conn: &mut Connection,
    tcp: &mut TcpStream,
    deadline: Option<Instant>,
    stop: &AtomicBool,
    done: impl Fn(&Connection, Option<&IoState>) -> bool,
) -> Result<bool, Failure> {
    let mut state = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        flush(conn, tcp).map_err(Failure::Io)?;
        if done(conn, state.as_ref()) {
            return Ok(true);
        }
        if !readable(tcp, deadline)? {
            continue;
        }
        match conn.read_tls(tcp) {
            Ok(0) => return Err(Failure::Closed),
            Ok(_) => {}
            Err(e) if is_transient(&e) => continue,
            Err(e) => return Err(Failure::Io(e)),
        }
        match conn.process_new_packets() {
            Ok(now) => state = Some(now),
            Err(e) => {
                // The alert rustls queued tells the peer why; it may be gone already.
                let _ = flush(conn, tcp);
                return Err(Failure::Tls(e));
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

/// Sends whatever the connection has queued. Handshake flights are small, so a blocking write
/// does not wait on the peer for long.
fn flush(conn: &mut Connection, tcp: &mut TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(tcp) {
            Ok(_) => {}
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Waits until the socket has something to read: `Ok(false)` when the wait was interrupted or
/// ran out short of the deadline (the caller looks again), `TimedOut` past the deadline.
fn readable(tcp: &TcpStream, deadline: Option<Instant>) -> Result<bool, Failure> {
    let millis = match deadline {
        None => -1,
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::TimedOut);
            }
            // Rounded up: a wait of 0 ms would spin through the last fraction of a ms.
            i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
        }
    };
    let mut poll = libc::pollfd {
        fd: tcp.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and poll(2) writes only its revents.
    match unsafe { libc::poll(&mut poll, 1, millis) } {
        ready if ready > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let e = io::Error::last_os_error();
            match is_transient(&e) {
                true => Ok(false),
                false => Err(Failure::Io(e)),
            }
        }
    }
}

/// "TLS handshake failed: <reason>", the reason in the user's terms where rustls's own words
/// would be obscure.
pub(super) fn message(failure: &Failure, role: &Role<'_>, timeout: Duration) -> String {
    let why = match failure {
        Failure::Tls(e) => tls_reason(e, role),
        Failure::Io(e) => describe(e),
        Failure::Closed => "the peer closed the connection".to_string(),
        Failure::TimedOut => format!("timed out after {}", humantime::format_duration(timeout)),
    };
    format!("TLS handshake failed: {why}")
}

fn tls_reason(error: &Error, role: &Role<'_>) -> String {
    if let Error::AlertReceived(alert) = error
        && let Some(reason) = alert_reason(alert, role)
    {
        return reason;
    }
    match (error, role) {
        (Error::InvalidCertificate(e), Role::Connector { host, .. }) => certificate(e, host),
        (Error::InvalidCertificate(e), Role::Listener) => {
            format!("client certificate refused: {}", certificate(e, ""))
        }
        (Error::NoCertificatesPresented, _) => "client certificate required".to_string(),
        (Error::InvalidMessage(InvalidMessage::InvalidContentType), _) => {
            "the peer does not speak TLS".to_string()
        }
        _ => error.to_string(),
    }
}

/// An alert from the peer that refused a certificate: ours as a listener, our client
/// certificate as a connecting side.
fn alert_reason(alert: &AlertDescription, role: &Role<'_>) -> Option<String> {
    if *alert == AlertDescription::CertificateRequired {
        return Some("client certificate required".to_string());
    }
    let words = certificate_alert(alert)?;
    match role {
        Role::Listener => Some(format!(
            "the connecting side refused our certificate ({words})"
        )),
        Role::Connector {
            presents_cert: true,
            ..
        } => Some(format!(
            "the listener refused our client certificate ({words})"
        )),
        Role::Connector { .. } => None,
    }
}

fn certificate(error: &CertificateError, host: &str) -> String {
    match error {
        CertificateError::UnknownIssuer => "unknown CA".to_string(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".to_string()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("name mismatch (certificate is not for {host})")
        }
        // The pin verifier's refusal, in its own words.
        CertificateError::Other(other) => other.to_string(),
        e => e.to_string(),
    }
}

/// The alerts a side sends when it refuses the other's certificate, in words.
fn certificate_alert(alert: &AlertDescription) -> Option<&'static str> {
    Some(match alert {
        AlertDescription::BadCertificate => "bad certificate",
        AlertDescription::UnsupportedCertificate => "unsupported certificate",
        AlertDescription::CertificateRevoked => "certificate revoked",
        AlertDescription::CertificateExpired => "certificate expired",
        AlertDescription::CertificateUnknown => "certificate unknown",
        AlertDescription::UnknownCA => "unknown CA",
        AlertDescription::AccessDenied => "access denied",
        _ => return None,
    })
}
