//! The TLS flags checked against the run's endpoints, and their files read and parsed once at
//! start into rustls configurations, so that a bad file is an error before any byte moves.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, Error, InconsistentKeys, RootCertStore, ServerConfig};

use super::TlsOptions;
use super::verify::{PinVerifier, parse_pin};
use crate::io::name::quoted;
use crate::io::sys::describe;

/// No certificate or key file is anywhere near this size: a larger one is the wrong file (or a
/// device that never ends), refused before it is read into memory.
const FILE_LIMIT: u64 = 1 << 20;

/// How the connecting side trusts the listener's certificate.
enum Trust {
    Roots(RootCertStore),
    Pin([u8; 32]),
}

/// Refuses flags that the run's endpoints cannot use, or that leave a side without what it
/// needs: a listener needs its certificate and key, a connecting side needs to know how to
/// trust the listener.
pub(super) fn check_roles(
    options: &TlsOptions,
    listens: bool,
    connects: bool,
) -> anyhow::Result<()> {
    let flag = |name: &str, path: &Path| format!("{name} {}", quoted(path));
    match (&options.cert, &options.key) {
        (Some(cert), None) => bail!("{}: no --tls-key to go with it", flag("--tls-cert", cert)),
        (None, Some(key)) => bail!("{}: no --tls-cert to go with it", flag("--tls-key", key)),
        _ => {}
    }
    if !listens && !connects {
        bail!("TLS flags need a tcp: or tcp-listen: endpoint");
    }
    if listens && options.cert.is_none() {
        bail!("a listening endpoint with TLS needs --tls-cert and --tls-key");
    }
    if let Some(client_ca) = options.client_ca.as_deref().filter(|_| !listens) {
        bail!(
            "{}: only a listening endpoint asks for client certificates",
            flag("--tls-client-ca", client_ca)
        );
    }
    match (&options.ca, &options.pin) {
        (Some(_), Some(_)) => bail!("--tls-ca and --tls-pin: give one, not both"),
        (None, None) if connects => {
            bail!("a connecting endpoint with TLS needs --tls-ca or --tls-pin")
        }
        (Some(ca), None) if !connects => bail!(
            "{}: only a connecting endpoint checks a listener's certificate",
            flag("--tls-ca", ca)
        ),
        (None, Some(_)) if !connects => {
            bail!("--tls-pin: only a connecting endpoint checks a listener's certificate")
        }
        _ => Ok(()),
    }
}

/// The certificate and key a side presents: the listener's own, or a connecting side's client
/// certificate for mutual TLS.
pub(super) fn identity(
    options: &TlsOptions,
    provider: &CryptoProvider,
) -> anyhow::Result<Option<Arc<CertifiedKey>>> {
    let (Some(cert_path), Some(key_path)) = (&options.cert, &options.key) else {
        return Ok(None);
    };
    let certs = certificates("--tls-cert", cert_path)?;
    let key_name = format!("--tls-key {}", quoted(key_path));
    let key =
        PrivateKeyDer::from_pem_slice(&read("--tls-key", key_path)?).map_err(|e| match e {
            pem::Error::NoItemsFound => anyhow!("{key_name}: no private key in the file"),
            e => anyhow!("{key_name}: not a PEM file ({e})"),
        })?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| anyhow!("{key_name}: unusable private key ({e})"))?;
    let identity = CertifiedKey::new(certs, key);
    match identity.keys_match() {
        Ok(()) | Err(Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => bail!(
            "{key_name}: not the key of the certificate in {}",
            quoted(cert_path)
        ),
        Err(e) => bail!(
            "--tls-cert {}: unusable certificate ({e})",
            quoted(cert_path)
        ),
    }
    Ok(Some(Arc::new(identity)))
}

/// The listener's configuration; with `--tls-client-ca`, clients must present a certificate
/// signed by it.
pub(super) fn server(
    options: &TlsOptions,
    identity: &Arc<CertifiedKey>,
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| anyhow!("TLS setup: {e}"))?;
    let builder = match &options.client_ca {
        Some(path) => {
            let roots = Arc::new(roots("--tls-client-ca", path)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| anyhow!("--tls-client-ca {}: {e}", quoted(path)))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(identity.clone())));
    // A ticket is what tells a client that its certificate was accepted (see
    // `verify::AskWatch`); one is enough, and bpipe never resumes with it.
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// The connecting side's configuration: the listener is trusted through `--tls-ca` or
/// `--tls-pin`; a certificate and key, if given, are presented when the listener asks.
pub(super) fn client(
    options: &TlsOptions,
    identity: Option<&Arc<CertifiedKey>>,
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let trust = match (&options.ca, &options.pin) {
        (Some(path), _) => Trust::Roots(roots("--tls-ca", path)?),
        (None, Some(pin)) => Trust::Pin(parse_pin(pin)?),
        (None, None) => bail!("a connecting endpoint with TLS needs --tls-ca or --tls-pin"),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| anyhow!("TLS setup: {e}"))?;
    let builder = match trust {
        Trust::Roots(roots) => builder.with_root_certificates(roots),
        Trust::Pin(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pin,
                algorithms: provider.signature_verification_algorithms,
            })),
    };
    let mut config = match identity {
        Some(identity) => {
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.clone())))
        }
        None => builder.with_no_client_auth(),
    };
    // Every connection gets a full handshake, so the listener's certificate (and ours) is
    // judged each time, never taken on trust from an earlier session.
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// A file's bytes; `flag` names it in messages.
fn read(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let name = || format!("{flag} {}", quoted(path));
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|file| file.take(FILE_LIMIT + 1).read_to_end(&mut bytes))
        .map_err(|e| anyhow!("{}: {}", name(), describe(&e)))?;
    if bytes.len() as u64 > FILE_LIMIT {
        bail!("{}: larger than 1 MiB, not a PEM file", name());
    }
    Ok(bytes)
}

/// Every certificate in a PEM file, in order (a leaf first, then its chain).
fn certificates(flag: &str, path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let name = || format!("{flag} {}", quoted(path));
    let certs = CertificateDer::pem_slice_iter(&read(flag, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: not a PEM file ({e})", name()))?;
    if certs.is_empty() {
        bail!("{}: no certificate in the file", name());
    }
    Ok(certs)
}

/// The CA certificates of a PEM file, as trust anchors.
fn roots(flag: &str, path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(flag, path)? {
        roots
            .add(cert)
            .map_err(|e| anyhow!("{flag} {}: unusable CA certificate ({e})", quoted(path)))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Authority, Leaf, Scratch};
    use super::super::{Tls, TlsOptions};

    fn refusal(options: &TlsOptions, listens: bool, connects: bool) -> String {
        match Tls::load(options, listens, connects) {
            Ok(_) => panic!("loaded"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn no_flag_means_no_tls() {
        let loaded = Tls::load(&TlsOptions::default(), true, true).unwrap();
        assert!(loaded.is_none());
    }

    #[test]
    fn a_missing_file_is_named_with_the_system_reason() {
        let scratch = Scratch::new();
        let leaf = Leaf::self_signed(&["localhost"]);
        let mut options = scratch.listener(&leaf);
        let missing = scratch.file("gone.pem", "");
        std::fs::remove_file(&missing).unwrap();
        options.cert = Some(missing.clone());
        assert_eq!(
            refusal(&options, true, false),
            format!(
                "--tls-cert {}: No such file or directory",
                missing.display()
            )
        );
    }

    #[test]
    fn a_key_or_certificate_alone_is_refused() {
        let scratch = Scratch::new();
        let key = scratch.file("k.pem", "");
        let alone = TlsOptions {
            key: Some(key.clone()),
            pin: Some("00".repeat(32)),
            ..TlsOptions::default()
        };
        assert_eq!(
            refusal(&alone, false, true),
            format!("--tls-key {}: no --tls-cert to go with it", key.display())
        );
        let alone = TlsOptions {
            cert: Some(key.clone()),
            ..TlsOptions::default()
        };
        assert_eq!(
            refusal(&alone, true, false),
            format!("--tls-cert {}: no --tls-key to go with it", key.display())
        );
    }

    #[test]
    fn each_side_needs_its_own_flags() {
        let scratch = Scratch::new();
        let ca = Authority::new("test CA");
        let listener = scratch.listener(&ca.leaf(&["localhost"]));
        assert_eq!(
            refusal(&listener, true, true),
            "a connecting endpoint with TLS needs --tls-ca or --tls-pin"
        );
        let client = scratch.trusting(&ca);
        assert_eq!(
            refusal(&client, true, true),
            "a listening endpoint with TLS needs --tls-cert and --tls-key"
        );
        assert_eq!(
            refusal(&client, false, false),
            "TLS flags need a tcp: or tcp-listen: endpoint"
        );
        let ca_path = client.ca.clone().unwrap();
        let both = TlsOptions {
            pin: Some("00".repeat(32)),
            ..client.clone()
        };
        assert_eq!(
            refusal(&both, false, true),
            "--tls-ca and --tls-pin: give one, not both"
        );
        let listening_with_ca = TlsOptions {
            ca: Some(ca_path.clone()),
            ..listener.clone()
        };
        assert_eq!(
            refusal(&listening_with_ca, true, false),
            format!(
                "--tls-ca {}: only a connecting endpoint checks a listener's certificate",
                ca_path.display()
            )
        );
        let connecting_with_client_ca = TlsOptions {
            client_ca: Some(ca_path.clone()),
            ..client
        };
        assert_eq!(
            refusal(&connecting_with_client_ca, false, true),
            format!(
                "--tls-client-ca {}: only a listening endpoint asks for client certificates",
                ca_path.display()
            )
        );
    }

    #[test]
    fn files_without_what_they_should_hold_are_named() {
        let scratch = Scratch::new();
        let leaf = Leaf::self_signed(&["localhost"]);
        let cert = scratch.file("c.pem", &leaf.cert);
        let key = scratch.file("k.pem", &leaf.key);
        let junk = scratch.file("junk.pem", "not a certificate\n");
        let options = |cert: &std::path::Path, key: &std::path::Path| TlsOptions {
            cert: Some(cert.to_path_buf()),
            key: Some(key.to_path_buf()),
            ..TlsOptions::default()
        };
        assert_eq!(
            refusal(&options(&cert, &cert), true, false),
            format!("--tls-key {}: no private key in the file", cert.display())
        );
        assert_eq!(
            refusal(&options(&key, &key), true, false),
            format!("--tls-cert {}: no certificate in the file", key.display())
        );
        let other = scratch.file("other.pem", &Leaf::self_signed(&["x"]).key);
        assert_eq!(
            refusal(&options(&cert, &other), true, false),
            format!(
                "--tls-key {}: not the key of the certificate in {}",
                other.display(),
                cert.display()
            )
        );
        let trusting_junk = TlsOptions {
            ca: Some(junk.clone()),
            ..TlsOptions::default()
        };
        assert_eq!(
            refusal(&trusting_junk, false, true),
            format!("--tls-ca {}: no certificate in the file", junk.display())
        );
    }

    #[test]
    fn a_bad_pin_is_refused_at_load() {
        let options = TlsOptions {
            pin: Some("12:34".to_string()),
            ..TlsOptions::default()
        };
        assert_eq!(
            refusal(&options, false, true),
            "--tls-pin 12:34: not a SHA-256 in hex (64 hex digits)"
        );
    }
}
