//! Flags for TCP endpoints: the shorthands, how connections are made and kept, bpipe's framed
//! stream and its checksum, and TLS.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueHint};

use crate::cli::target::Address;
use crate::cli::units;

const NETWORK: &str = "Network";
const TLS: &str = "TLS";

/// An `--allow` entry: an address, or a network as ADDR/PREFIX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allow {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Allow {
    /// Whether `peer` is in this network; an IPv4 peer seen through an IPv6 socket
    /// (::ffff:a.b.c.d) is matched as IPv4.
    pub fn admits(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, bits) = match (self.network, peer) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (a >> shift) == (b >> shift)
    }
}

fn parse_allow(text: &str) -> Result<Allow, String> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (text, None),
    };
    let address = address.trim_start_matches('[').trim_end_matches(']');
    let network: IpAddr = address
        .parse()
        .map_err(|_| format!("'{address}' is not an IP address"))?;
    let bits = if network.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => bits,
        Some(prefix) => prefix
            .parse::<u8>()
            .ok()
            .filter(|&p| p <= bits)
            .ok_or_else(|| format!("prefix '/{prefix}' must be 0 to {bits}"))?,
    };
    Ok(Allow { network, prefix })
}

#[derive(Args, Debug, Default)]
pub struct NetArgs {
    /// Read from a TCP connection accepted on [ADDR:]PORT (tcp-listen:[ADDR:]PORT as a FILE).
    #[arg(long, value_name = "[ADDR:]PORT", value_parser = Address::listen, value_hint = ValueHint::Other,
          help_heading = NETWORK)]
    pub listen: Vec<Address>,

    /// Write to a TCP connection to HOST:PORT (tcp:HOST:PORT as an output).
    #[arg(long, value_name = "HOST:PORT", value_parser = Address::connect, value_hint = ValueHint::Other,
          help_heading = NETWORK)]
    pub connect: Vec<Address>,

    /// Accept N connections on the listening input and merge them (with --merge), then stop
    /// listening.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..1025),
          value_hint = ValueHint::Other, help_heading = NETWORK)]
    pub max_conns: u32,

    /// Give up waiting for a connection after DURATION (exit 1).
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration, value_hint = ValueHint::Other,
          help_heading = NETWORK)]
    pub accept_timeout: Option<Duration>,

    /// Retry a refused or unreachable connection for at most DURATION, with growing delays
    /// (100ms doubling to 2s, with jitter).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = units::parse_duration,
          value_hint = ValueHint::Other, help_heading = NETWORK)]
    pub connect_timeout: Duration,

    /// Make at most N more attempts after the first (default: as many as --connect-timeout allows).
    #[arg(long, value_name = "N", value_hint = ValueHint::Other, help_heading = NETWORK)]
    pub retries: Option<u32>,

    /// A peer that stops answering (keep-alive probes, unacknowledged data) is an error after
    /// DURATION; unlike --stall-timeout, a slow but live peer is not.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = units::parse_duration,
          value_hint = ValueHint::Other, help_heading = NETWORK)]
    pub peer_timeout: Duration,

    /// Socket send and receive buffer size (SO_SNDBUF, SO_RCVBUF); default: the kernel's.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_positive_size, value_hint = ValueHint::Other,
          help_heading = NETWORK)]
    pub tcp_buffer: Option<u64>,

    /// Accept connections only from ADDR or the network ADDR/PREFIX (repeatable); others are
    /// closed at once and the listener keeps waiting.
    #[arg(long, value_name = "ADDR[/PREFIX]", value_parser = parse_allow, value_hint = ValueHint::Other,
          help_heading = NETWORK)]
    pub allow: Vec<Allow>,

    /// Plain bytes on TCP, for nc, socat or mbuffer on the other side: no hello, no trailer,
    /// so a sender that dies looks like a clean end.
    #[arg(long, help_heading = NETWORK)]
    pub raw: bool,

    /// Digest every byte (BLAKE3); between two bpipes (give it to both) the receiver verifies
    /// it (exit 6 on a mismatch). Uses the copy path.
    #[arg(long, help_heading = NETWORK)]
    pub checksum: bool,

    /// The certificate (PEM) a listener presents, or a connecting side's client certificate.
    #[arg(long, value_name = "FILE", requires = "tls_key", value_hint = ValueHint::FilePath,
          help_heading = TLS)]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert", value_hint = ValueHint::FilePath,
          help_heading = TLS)]
    pub tls_key: Option<PathBuf>,

    /// Trust listeners whose certificate this CA (PEM) signed, for the host named.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_pin", value_hint = ValueHint::FilePath,
          help_heading = TLS)]
    pub tls_ca: Option<PathBuf>,

    /// Trust the listener whose certificate has this SHA-256 (hex, of the DER), e.g. a
    /// self-signed one.
    #[arg(long, value_name = "SHA256", value_hint = ValueHint::Other, help_heading = TLS)]
    pub tls_pin: Option<String>,

    /// Require client certificates signed by this CA (PEM) on listening endpoints.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = TLS)]
    pub tls_client_ca: Option<PathBuf>,
}

impl NetArgs {
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
            || self.tls_ca.is_some()
            || self.tls_pin.is_some()
            || self.tls_client_ca.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_takes_addresses_and_networks() {
        let allow = parse_allow("127.0.0.2").unwrap();
        assert!(allow.admits("127.0.0.2".parse().unwrap()));
        assert!(!allow.admits("127.0.0.1".parse().unwrap()));
        let net = parse_allow("10.1.0.0/16").unwrap();
        assert!(net.admits("10.1.200.3".parse().unwrap()));
        assert!(!net.admits("10.2.0.1".parse().unwrap()));
        assert!(net.admits("::ffff:10.1.0.9".parse().unwrap()));
        let any = parse_allow("0.0.0.0/0").unwrap();
        assert!(any.admits("192.0.2.1".parse().unwrap()));
        assert!(!any.admits("::1".parse().unwrap()));
        let v6 = parse_allow("[::1]").unwrap();
        assert!(v6.admits("::1".parse().unwrap()));
    }

    #[test]
    fn bad_allow_entries_are_refused() {
        assert!(parse_allow("nohost").is_err());
        assert!(parse_allow("10.0.0.0/33").is_err());
        assert!(parse_allow("::/129").is_err());
        assert!(parse_allow("::/128").is_ok());
    }
}
