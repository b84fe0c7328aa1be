//! Handshakes and tunnels over loopback with certificates made at test time.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::testing::*;
use super::{Tls, TlsOptions, Tunnel};

const HOST: &str = "localhost";

/// A listener with a leaf of `ca` for localhost and 127.0.0.1, and a client that trusts `ca`.
fn pair_with_ca(scratch: &Scratch, ca: &Authority) -> (Tls, Tls) {
    let leaf = ca.leaf(&[HOST, "127.0.0.1"]);
    (
        listening(&scratch.listener(&leaf)),
        connecting(&scratch.trusting(ca)),
    )
}

/// Sends `data` one way and 8 bytes back: the sender shuts its write side, the receiver reads
/// to the end, answers, and shuts its own; both then see the end.
fn exchange(sender: &Tunnel, receiver: &Tunnel, data: &[u8]) {
    let mut out = stream(sender);
    let mut back = stream(receiver);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            out.write_all(data).unwrap();
            out.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        back.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert!(got == data, "{} bytes came, {} sent", got.len(), data.len());
    });
    back.write_all(b"ack 1234").unwrap();
    back.shutdown(Shutdown::Write).unwrap();
    let mut ack = Vec::new();
    out.read_to_end(&mut ack).unwrap();
    assert_eq!(ack, b"ack 1234");
    assert_eq!(sender.fault(), None);
    assert_eq!(receiver.fault(), None);
}

#[test]
fn a_tunnel_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Tunnel>();
    shared::<Tls>();
}

#[test]
fn a_few_mib_go_through_byte_exact_and_an_answer_comes_back() {
    let scratch = Scratch::new();
    let ca = Authority::new("test CA");
    let (server, client) = pair_with_ca(&scratch, &ca);
    let (accepted, connected) = handshake(&server, &client, HOST);
    let (accepted, connected) = (tunnel(accepted), tunnel(connected));
    exchange(&connected, &accepted, &pattern(5 << 20));
}

#[test]
fn a_pinned_self_signed_listener_sends_to_the_client() {
    let scratch = Scratch::new();
    let leaf = Leaf::self_signed(&["bpipe.test"]);
    let server = listening(&scratch.listener(&leaf));
    let pin = leaf.pin().to_uppercase();
    let client = connecting(&TlsOptions {
        pin: Some(pin),
        ..TlsOptions::default()
    });
    // Names are not checked with a pin: the certificate is for another name than the address.
    let (accepted, connected) = handshake(&server, &client, "127.0.0.1");
    exchange(&tunnel(accepted), &tunnel(connected), &pattern(3 << 20));
}

#[test]
fn an_ip_address_is_checked_against_the_certificate() {
    let scratch = Scratch::new();
    let ca = Authority::new("test CA");
    let (server, client) = pair_with_ca(&scratch, &ca);
    let (accepted, connected) = handshake(&server, &client, "127.0.0.1");
    exchange(&tunnel(connected), &tunnel(accepted), b"by address");
    let (_, connected) = handshake(&server, &client, "127.0.0.2");
    assert_eq!(
        failure(connected),
        "TLS handshake failed: name mismatch (certificate is not for 127.0.0.2)"
    );
}

#[test]
fn an_unknown_ca_fails_on_both_sides() {
    let scratch = Scratch::new();
    let (server, _) = pair_with_ca(&scratch, &Authority::new("listener's CA"));
    let client = connecting(&scratch.trusting(&Authority::new("another CA")));
    let (accepted, connected) = handshake(&server, &client, HOST);
    assert_eq!(failure(connected), "TLS handshake failed: unknown CA");
    assert_eq!(
        failure(accepted),
        "TLS handshake failed: the connecting side refused our certificate (unknown CA)"
    );
}

#[test]
fn a_wrong_pin_fails() {
    let scratch = Scratch::new();
    let leaf = Leaf::self_signed(&[HOST]);
    let server = listening(&scratch.listener(&leaf));
    let client = connecting(&TlsOptions {
        pin: Some(Leaf::self_signed(&[HOST]).pin()),
        ..TlsOptions::default()
    });
    let (accepted, connected) = handshake(&server, &client, HOST);
    assert_eq!(failure(connected), "TLS handshake failed: pin mismatch");
    assert!(failure(accepted).starts_with("TLS handshake failed: the connecting side refused"));
}

#[test]
fn an_expired_certificate_fails() {
    let scratch = Scratch::new();
    let ca = Authority::new("test CA");
    let server = listening(&scratch.listener(&ca.expired_leaf(&[HOST])));
    let client = connecting(&scratch.trusting(&ca));
    let (_, connected) = handshake(&server, &client, HOST);
    assert_eq!(
        failure(connected),
        "TLS handshake failed: certificate expired"
    );
}

#[test]
fn a_certificate_for_another_name_fails() {
    let scratch = Scratch::new();
    let ca = Authority::new("test CA");
    let (server, client) = pair_with_ca(&scratch, &ca);
    let (_, connected) = handshake(&server, &client, "elsewhere.test");
    assert_eq!(
        failure(connected),
        "TLS handshake failed: name mismatch (certificate is not for elsewhere.test)"
    );
}

/// A listener that requires client certificates signed by `client_ca`.
fn requiring(scratch: &Scratch, ca: &Authority, client_ca: &Authority) -> Tls {
    let mut options = scratch.listener(&ca.leaf(&[HOST]));
    options.client_ca = Some(scratch.file("client-ca.pem", &client_ca.pem));
    listening(&options)
}

/// A client that trusts `ca` and presents a leaf of `issuer`.
fn presenting(scratch: &Scratch, ca: &Authority, issuer: &Authority) -> Tls {
    let leaf = issuer.leaf(&["client.test"]);
    let mut options = scratch.trusting(ca);
    options.cert = Some(scratch.file("client-cert.pem", &leaf.cert));
    options.key = Some(scratch.file("client-key.pem", &leaf.key));
    connecting(&options)
}

#[test]
fn a_missing_client_certificate_fails_on_both_sides() {
    let scratch = Scratch::new();
    let ca = Authority::new("test CA");
    let server = requiring(&scratch, &ca, &Authority::new("client CA"));
    let client = connecting(&scratch.trusting(&ca));
    let (accepted, connected) = handshake(&server, &client, HOST);
    assert_eq!(
        failure(accepted),
        "TLS handshake failed: client certificate required"
    );
    assert_eq!(
        failure(connected),
        "TLS handshake failed: client certificate required"
    );
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let scratch = Scratch::new();
    let ca = Authority::new("test CA");
    let server = requiring(&scratch, &ca, &Authority::new("client CA"));
    let client = presenting(&scratch, &ca, &Authority::new("stranger"));
    let (accepted, connected) = handshake(&server, &client, HOST);
    assert_eq!(
        failure(accepted),
        "TLS handshake failed: client certificate refused: unknown CA"
    );
    assert_eq!(
        failure(connected),
        "TLS handshake failed: the listener refused our client certificate (unknown CA)"
    );
}

#[test]
fn mutual_tls_with_a_known_client_certificate_moves_data() {
    let scratch = Scratch::new();
    let ca = Authority::new("test CA");
    let client_ca = Authority::new("client CA");
    let server = requiring(&scratch, &ca, &client_ca);
    let client = presenting(&scratch, &ca, &client_ca);
    let (accepted, connected) = handshake(&server, &client, HOST);
    exchange(&tunnel(connected), &tunnel(accepted), &pattern(100_000));
}

#[test]
fn a_peer_that_does_not_speak_tls_is_named() {
    let scratch = Scratch::new();
    let (server, _) = pair_with_ca(&scratch, &Authority::new("test CA"));
    let (accepted, mut connected) = tcp_pair();
    connected
        .write_all(b"BPIPE hello, in plain bytes\n")
        .unwrap();
    let stop = AtomicBool::new(false);
    let outcome = server.accept(accepted, TIMEOUT, &stop);
    assert_eq!(
        failure(outcome),
        "TLS handshake failed: the peer does not speak TLS"
    );
}

#[test]
fn a_silent_peer_times_the_handshake_out() {
    let scratch = Scratch::new();
    let (server, _) = pair_with_ca(&scratch, &Authority::new("test CA"));
    let (accepted, _connected) = tcp_pair();
    let stop = AtomicBool::new(false);
    let outcome = server.accept(accepted, Duration::from_millis(200), &stop);
    assert_eq!(
        failure(outcome),
        "TLS handshake failed: timed out after 200ms"
    );
}

#[test]
fn a_stop_ends_a_waiting_handshake_with_none() {
    use std::os::unix::thread::JoinHandleExt;
    crate::supervise::signals::install_wakeup_handler().unwrap();
    let scratch = Scratch::new();
    let (server, _) = pair_with_ca(&scratch, &Authority::new("test CA"));
    let (accepted, _connected) = tcp_pair();
    let stop = Arc::new(AtomicBool::new(false));
    let (done, outcome) = mpsc::channel();
    let waiting = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let outcome = server.accept(accepted, TIMEOUT, &stop);
            done.send(outcome.map(|t| t.is_none())).unwrap();
        })
    };
    stop.store(true, Ordering::Relaxed);
    let stopped = loop {
        crate::supervise::signals::wake(waiting.as_pthread_t());
        if let Ok(outcome) = outcome.recv_timeout(Duration::from_millis(20)) {
            break outcome.unwrap();
        }
    };
    assert!(stopped, "a stopped accept returns Ok(None)");
    waiting.join().unwrap();
}

/// A rustls client driven by hand, to end a connection in ways a Tunnel never does.
fn raw_client(client: &Tls, tcp: &mut TcpStream) -> rustls::ClientConnection {
    let config = client.client.clone().unwrap();
    let mut conn = rustls::ClientConnection::new(config, HOST.try_into().unwrap()).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(tcp).unwrap();
    }
    conn.writer().write_all(b"partial").unwrap();
    while conn.wants_write() {
        conn.write_tls(tcp).unwrap();
    }
    conn
}

/// What the listener's stage reads until the end, with the fault it finds then. `end` ends the
/// client's connection, and returns it if it must stay open until the stage has read.
fn read_until_the_end(
    server: &Tls,
    client: &Tls,
    end: impl FnOnce(TcpStream) -> Option<TcpStream>,
) -> (Vec<u8>, Option<String>) {
    let (accepted, mut connected) = tcp_pair();
    let stop = AtomicBool::new(false);
    let accepted = std::thread::scope(|scope| {
        let listener = scope.spawn(|| server.accept(accepted, TIMEOUT, &stop));
        let _conn = raw_client(client, &mut connected);
        tunnel(listener.join().unwrap())
    });
    let _open = end(connected);
    let mut got = Vec::new();
    let _ = stream(&accepted).read_to_end(&mut got);
    // Asked right after the end, without waiting: the pump records the fault first.
    (got, accepted.fault())
}

#[test]
fn a_peer_gone_without_close_notify_is_a_fault_seen_at_the_end() {
    let scratch = Scratch::new();
    let (server, client) = pair_with_ca(&scratch, &Authority::new("test CA"));
    // Half-closed, not closed: a close with the listener's ticket unread would send RST.
    let fin = |tcp: TcpStream| {
        tcp.shutdown(Shutdown::Write).unwrap();
        Some(tcp)
    };
    let (got, fault) = read_until_the_end(&server, &client, fin);
    assert_eq!(got, b"partial");
    assert_eq!(fault.as_deref(), Some("peer closed without close_notify"));
}

#[test]
fn a_reset_is_a_fault_seen_at_the_end() {
    use std::os::fd::AsRawFd;
    let scratch = Scratch::new();
    let (server, client) = pair_with_ca(&scratch, &Authority::new("test CA"));
    let reset = |tcp: TcpStream| {
        // A zero linger makes close send RST.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket and a linger of the size given.
        let set = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0);
        None
    };
    let (_, fault) = read_until_the_end(&server, &client, reset);
    assert_eq!(fault.as_deref(), Some("Connection reset by peer"));
}

#[test]
fn a_dropped_tunnel_ends_the_stream_cleanly() {
    let scratch = Scratch::new();
    let (server, client) = pair_with_ca(&scratch, &Authority::new("test CA"));
    let (accepted, connected) = handshake(&server, &client, HOST);
    let (accepted, connected) = (tunnel(accepted), tunnel(connected));
    stream(&connected).write_all(b"last words").unwrap();
    drop(connected);
    let mut got = Vec::new();
    stream(&accepted).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
    assert_eq!(accepted.fault(), None);
}
