//! TLS on TCP endpoints (issue 11), with certificates made at test time: byte-exact through a
//! CA or a pin, mutual TLS, and each refusal named, with no data moved.

use std::process::{Child, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use crate::net::free_port;
use crate::util::*;

struct Authority {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key in PEM, and the SHA-256 of its DER in hex (a pin).
struct Leaf {
    cert: String,
    key: String,
    pin: String,
}

fn pin_of(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Authority {
    fn new(name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Authority {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            pin: pin_of(cert.der()),
        }
    }
}

/// The files of one test: a CA, the listener's certificate for 127.0.0.1, a second CA, and a
/// client certificate from the first.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new(tag: &str) -> (Pki, Leaf) {
        let dir = TempDir::new(&format!("tls-{tag}"));
        let ca = Authority::new("bpipe test CA");
        let server = ca.leaf(&["127.0.0.1", "localhost"]);
        let client = ca.leaf(&["client"]);
        dir.file("ca.pem", ca.pem.as_bytes());
        dir.file("other-ca.pem", Authority::new("another CA").pem.as_bytes());
        dir.file("cert.pem", server.cert.as_bytes());
        dir.file("key.pem", server.key.as_bytes());
        dir.file("client.pem", client.cert.as_bytes());
        dir.file("client-key.pem", client.key.as_bytes());
        (Pki { dir }, server)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path(name).to_str().unwrap().to_string()
    }
}

fn receiver(pki: &Pki, listen: &str, extra: &[&str]) -> Child {
    let (cert, key, out) = (pki.path("cert.pem"), pki.path("key.pem"), pki.path("out"));
    let mut args = vec![
        "--listen",
        listen,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "-o",
        &out,
    ];
    args.extend(extra);
    bpipe(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the receiver")
}

/// Sends `input` from a connecting bpipe with `trust` flags; both outputs.
fn send(pki: &Pki, trust: &[&str], input: &[u8]) -> (Output, Output) {
    let listen = format!("127.0.0.1:{}", free_port());
    let receiving = receiver(pki, &listen, &[]);
    let sender = run(&[&["--connect", &listen][..], trust].concat(), input);
    (sender, finish(receiving, Duration::from_secs(30)))
}

#[test]
fn a_stream_through_tls_arrives_whole_with_a_ca_or_a_pin() {
    let (pki, server) = Pki::new("whole");
    let input = random_bytes(32 << 20, 21);
    let ca = pki.path("ca.pem");
    for trust in [["--tls-ca", &ca], ["--tls-pin", &server.pin.to_uppercase()]] {
        let (sender, receiver) = send(&pki, &trust, &input);
        assert_eq!(sender.code(), 0, "{trust:?}: {}", sender.stderr);
        assert_eq!(receiver.code(), 0, "{trust:?}: {}", receiver.stderr);
        assert!(
            std::fs::read(pki.path("out")).unwrap() == input,
            "{trust:?}: the output differs"
        );
    }
}

/// A handshake that fails: both sides exit 1, the connecting side names `reason`, and not a
/// byte reaches the receiver's output.
fn refused(pki: &Pki, sender_flags: &[&str], receiver_flags: &[&str], reason: &str) {
    let listen = format!("127.0.0.1:{}", free_port());
    let receiving = receiver(pki, &listen, receiver_flags);
    let args = [&["--connect", &listen][..], sender_flags].concat();
    let sender = run(&args, &random_bytes(1 << 20, 22));
    let receiver = finish(receiving, Duration::from_secs(30));
    assert_eq!(sender.code(), 1, "{}", sender.stderr);
    assert!(
        sender
            .stderr
            .contains(&format!("TLS handshake failed: {reason}")),
        "{}",
        sender.stderr
    );
    assert_eq!(receiver.code(), 1, "{}", receiver.stderr);
    assert!(
        receiver.stderr.contains("TLS handshake failed"),
        "{}",
        receiver.stderr
    );
    let moved = std::fs::metadata(pki.path("out")).map_or(0, |m| m.len());
    assert_eq!(moved, 0, "data moved before the handshake completed");
}

#[test]
fn a_listener_signed_by_another_ca_is_refused() {
    let (pki, _) = Pki::new("wrong-ca");
    refused(
        &pki,
        &["--tls-ca", &pki.path("other-ca.pem")],
        &[],
        "unknown CA",
    );
}

#[test]
fn a_wrong_pin_is_refused() {
    let (pki, server) = Pki::new("wrong-pin");
    let wrong: String = server.pin.chars().rev().collect();
    refused(&pki, &["--tls-pin", &wrong], &[], "pin mismatch");
}

#[test]
fn mutual_tls_needs_a_client_certificate() {
    let (pki, _) = Pki::new("mutual");
    let ca = pki.path("ca.pem");
    let client_ca = ["--tls-client-ca", ca.as_str()];
    refused(
        &pki,
        &["--tls-ca", &ca],
        &client_ca,
        "client certificate required",
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let receiving = receiver(&pki, &listen, &client_ca);
    let (cert, key) = (pki.path("client.pem"), pki.path("client-key.pem"));
    let args = [
        "--connect",
        &listen,
        "--tls-ca",
        &ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let input = random_bytes(1 << 20, 23);
    let sender = run(&args, &input);
    let receiver = finish(receiving, Duration::from_secs(30));
    assert_eq!(sender.code(), 0, "{}", sender.stderr);
    assert_eq!(receiver.code(), 0, "{}", receiver.stderr);
    assert!(std::fs::read(pki.path("out")).unwrap() == input);
}

#[test]
fn tls_flags_that_do_not_fit_the_endpoints_are_usage_errors() {
    let done = run(
        &[
            "--connect",
            "127.0.0.1:1",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
        ],
        b"",
    );
    assert_eq!(done.code(), 2, "{}", done.stderr);
    assert!(
        done.stderr
            .starts_with("bpipe: a connecting endpoint with TLS needs --tls-ca or --tls-pin")
    );
    let done = run(&["--tls-pin", "00"], b"");
    assert_eq!(done.code(), 2, "{}", done.stderr);
    let done = run(
        &[
            "--connect",
            "127.0.0.1:1",
            "--tls-ca",
            "/nonexistent/ca.pem",
        ],
        b"",
    );
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("/nonexistent/ca.pem"),
        "{}",
        done.stderr
    );
}
