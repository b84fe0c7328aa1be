//! For the tests: certificates made at test time, files for them, and handshakes over loopback.

use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use super::{Tls, TlsOptions, Tunnel};

/// A certificate authority made for one test.
pub(super) struct Authority {
    pub(super) pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A leaf certificate and its key, in PEM, with the certificate's DER for pins.
pub(super) struct Leaf {
    pub(super) cert: String,
    pub(super) key: String,
    pub(super) der: Vec<u8>,
}

impl Authority {
    pub(super) fn new(name: &str) -> Authority {
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

    /// A leaf for `names` (DNS names or IP literals), valid now.
    pub(super) fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, |_| {})
    }

    /// A leaf whose validity ended long ago.
    pub(super) fn expired_leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, |params| {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        })
    }

    fn leaf_with(&self, names: &[&str], adjust: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        adjust(&mut params);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

impl Leaf {
    /// A self-signed leaf, as `openssl req -x509` makes for a pin.
    pub(super) fn self_signed(names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// The pin as `openssl x509 -outform der | sha256sum` prints it.
    pub(super) fn pin(&self) -> String {
        ring::digest::digest(&ring::digest::SHA256, &self.der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A directory of its own for one test's files, removed at the end.
pub(super) struct Scratch(PathBuf);

impl Scratch {
    pub(super) fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bpipe-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub(super) fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Options for a listener presenting `leaf`.
    pub(super) fn listener(&self, leaf: &Leaf) -> TlsOptions {
        TlsOptions {
            cert: Some(self.file("server-cert.pem", &leaf.cert)),
            key: Some(self.file("server-key.pem", &leaf.key)),
            ..TlsOptions::default()
        }
    }

    /// Options for a connecting side that trusts `ca`.
    pub(super) fn trusting(&self, ca: &Authority) -> TlsOptions {
        TlsOptions {
            ca: Some(self.file("ca.pem", &ca.pem)),
            ..TlsOptions::default()
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn listening(options: &TlsOptions) -> Tls {
    Tls::load(options, true, false).unwrap().unwrap()
}

pub(super) fn connecting(options: &TlsOptions) -> Tls {
    Tls::load(options, false, true).unwrap().unwrap()
}

/// Both ends of one TCP connection over loopback: (accepted, connected).
pub(super) fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (server, client)
}

/// Bounds every handshake in the tests.
pub(super) const TIMEOUT: Duration = Duration::from_secs(20);

pub(super) type Outcome = anyhow::Result<Option<Tunnel>>;

/// The listener's accept in a thread of its own and the client's connect to `host`, over one
/// loopback connection: (listener's outcome, client's outcome).
pub(super) fn handshake(server: &Tls, client: &Tls, host: &str) -> (Outcome, Outcome) {
    let (accepted, connected) = tcp_pair();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let listener = scope.spawn(|| server.accept(accepted, TIMEOUT, &stop));
        let client = client.connect(connected, host, TIMEOUT, &stop);
        (listener.join().unwrap(), client)
    })
}

/// The handshake's failure message; panics when it succeeded.
pub(super) fn failure(outcome: Outcome) -> String {
    match outcome {
        Ok(_) => panic!("the handshake succeeded"),
        Err(e) => e.to_string(),
    }
}

/// The tunnel of a completed handshake.
pub(super) fn tunnel(outcome: Outcome) -> Tunnel {
    outcome.unwrap().expect("not stopped")
}

/// A stream on the tunnel's plaintext end, as a stage would use it.
pub(super) fn stream(tunnel: &Tunnel) -> UnixStream {
    UnixStream::from(tunnel.as_fd().try_clone_to_owned().unwrap())
}

/// Bytes that show a misplaced or lost piece (a counter would repeat every 256 bytes).
pub(super) fn pattern(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
