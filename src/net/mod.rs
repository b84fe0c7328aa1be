//! TCP endpoints: addresses resolved and listeners bound when the run starts, connections made
//! (with retries) or accepted when a stage opens its endpoint, and bpipe's framed stream over
//! them, which tells a finished transfer from a dead sender.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use crate::cli::Cli;
use crate::cli::net::Allow;
use crate::net::connect::Retry;
use crate::net::tls::{Tls, TlsOptions};
use crate::supervise::message::Message;

pub(crate) mod connect;
pub(crate) mod frame;
pub(crate) mod framed;
pub(crate) mod listen;
pub(crate) mod open;
pub(crate) mod options;
pub(crate) mod receive;
pub(crate) mod send;
pub(crate) mod socket;
pub(crate) mod tls;
pub(crate) mod wait;

/// The name the stats give the digest.
pub(crate) const CHECKSUM_ALG: &str = "blake3";

/// Every setting of the network endpoints, from the flags.
#[derive(Clone, Debug)]
pub(crate) struct NetSpec {
    /// bpipe's framed stream, rather than plain bytes (`--raw`).
    pub(crate) framed: bool,
    pub(crate) checksum: bool,
    pub(crate) max_conns: usize,
    pub(crate) accept_timeout: Option<Duration>,
    pub(crate) retry: Retry,
    pub(crate) peer_timeout: Duration,
    pub(crate) tcp_buffer: Option<usize>,
    pub(crate) allow: Vec<Allow>,
    /// Each connection attempt and accepted peer is told (under -i or -p).
    pub(crate) verbose: bool,
    pub(crate) tls: TlsOptions,
}

impl From<&Cli> for NetSpec {
    fn from(cli: &Cli) -> NetSpec {
        let net = &cli.net;
        NetSpec {
            framed: !net.raw,
            checksum: net.checksum,
            max_conns: net.max_conns as usize,
            accept_timeout: net.accept_timeout,
            retry: Retry {
                budget: net.connect_timeout,
                retries: net.retries,
            },
            peer_timeout: net.peer_timeout,
            tcp_buffer: net
                .tcp_buffer
                .map(|b| usize::try_from(b).unwrap_or(usize::MAX)),
            allow: net.allow.clone(),
            verbose: (cli.interval.is_some() || cli.progress) && !cli.quiet,
            tls: TlsOptions::from(net),
        }
    }
}

/// What the network endpoints add to the stats.
#[derive(Default)]
pub(crate) struct NetStats {
    connect_attempts: AtomicU64,
    digest: Mutex<Option<[u8; 32]>>,
}

impl NetStats {
    pub(crate) fn attempted(&self) {
        self.connect_attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connect_attempts(&self) -> u64 {
        self.connect_attempts.load(Ordering::Relaxed)
    }

    /// The digest of a stream that ended; with several streams, the last to end.
    pub(crate) fn digested(&self, digest: [u8; 32]) {
        *self.digest.lock().unwrap_or_else(|e| e.into_inner()) = Some(digest);
    }

    pub(crate) fn digest(&self) -> Option<[u8; 32]> {
        *self.digest.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What every network endpoint of a run shares: the settings, the stats, and the way to a line
/// on standard error while the run goes on.
pub(crate) struct Link {
    pub(crate) spec: NetSpec,
    pub(crate) stats: NetStats,
    /// TLS on every connection, when a TLS flag was given.
    pub(crate) tls: Option<Tls>,
    notes: Mutex<mpsc::Sender<Message>>,
}

impl Link {
    pub(crate) fn new(spec: NetSpec, tls: Option<Tls>, notes: mpsc::Sender<Message>) -> Link {
        Link {
            spec,
            stats: NetStats::default(),
            tls,
            notes: Mutex::new(notes),
        }
    }

    /// A line about a connection: `routine` ones (attempts, peers accepted) only under -i or
    /// -p; others (a peer refused) unless -q.
    pub(crate) fn note(&self, line: String, routine: bool) {
        if routine && !self.spec.verbose {
            return;
        }
        let notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let _ = notes.send(Message::Note(line));
    }
}

/// The digest as the stats and summaries print it.
pub(crate) fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
