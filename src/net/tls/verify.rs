//! Trusting a listener by the SHA-256 of its certificate (`--tls-pin`), and noticing that a
//! listener asked for a client certificate.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme,
    crypto::verify_tls12_signature, crypto::verify_tls13_signature,
};

use crate::io::name::quoted;

/// The pin as typed: hex digits, with the colons of `openssl x509 -fingerprint` or spaces
/// between them, in either case.
pub(super) fn parse_pin(text: &str) -> anyhow::Result<[u8; 32]> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b':' && !b.is_ascii_whitespace())
        .collect();
    if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
        anyhow::bail!(
            "--tls-pin {}: not a SHA-256 in hex (64 hex digits)",
            // The pin is the user's text: quoted like a file name so it cannot break the line.
            quoted(Path::new(text))
        );
    }
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit.to_ascii_lowercase() - b'a' + 10,
    };
    let mut pin = [0u8; 32];
    for (byte, pair) in pin.iter_mut().zip(digits.chunks(2)) {
        *byte = nibble(pair[0]) << 4 | nibble(pair[1]);
    }
    Ok(pin)
}

/// Why a pinned certificate is refused; the handshake's failure message is this text.
#[derive(Debug)]
struct PinMismatch;

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pin mismatch")
    }
}

impl std::error::Error for PinMismatch {}

/// Accepts exactly the certificate whose DER has the pinned SHA-256, whatever its issuer, names
/// or dates: a pin is for a self-signed certificate that no CA vouches for, as ssh trusts a
/// host key. The handshake signature is still checked, so the peer must hold the private key.
#[derive(Debug)]
pub(super) struct PinVerifier {
    pub(super) pin: [u8; 32],
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        if digest.as_ref() == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch)),
            )))
        }
    }

    // Never negotiated (TLS 1.3 only), but the trait asks for it.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Wraps a connection's client-certificate resolver to learn whether the listener asked for a
/// certificate. In TLS 1.3 the client's handshake ends before the listener has judged its
/// certificate, so a refusal comes after it: the connecting side waits for that verdict only
/// when there was something to judge.
#[derive(Debug)]
pub(super) struct AskWatch {
    inner: Arc<dyn ResolvesClientCert>,
    asked: AtomicBool,
}

impl AskWatch {
    pub(super) fn new(inner: Arc<dyn ResolvesClientCert>) -> Self {
        AskWatch {
            inner,
            asked: AtomicBool::new(false),
        }
    }

    pub(super) fn asked(&self) -> bool {
        self.asked.load(Ordering::Relaxed)
    }

    /// Whether we have a certificate to present, so a refusal is of ours.
    pub(super) fn presents(&self) -> bool {
        self.inner.has_certs()
    }
}

impl ResolvesClientCert for AskWatch {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn a_pin_reads_in_either_case_with_colons_or_spaces() {
        let plain = parse_pin(HEX).unwrap();
        assert_eq!(plain[0], 0x00);
        assert_eq!(plain[1], 0x11);
        assert_eq!(plain[31], 0xff);
        let colons: Vec<String> = HEX
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8(pair.to_vec()).unwrap())
            .collect();
        assert_eq!(parse_pin(&colons.join(":")).unwrap(), plain);
        assert_eq!(parse_pin(&colons.join(" ")).unwrap(), plain);
        assert_eq!(parse_pin(&format!("  {HEX}\n")).unwrap(), plain);
    }

    #[test]
    fn a_bad_pin_is_refused_with_the_text_as_typed() {
        let signed = "+f".repeat(32);
        for bad in [
            "",
            "abc",
            &HEX[1..],
            &format!("{HEX}00"),
            &HEX.replace('a', "g"),
            &signed,
        ] {
            let error = parse_pin(bad).unwrap_err().to_string();
            assert!(
                error.ends_with(": not a SHA-256 in hex (64 hex digits)"),
                "{bad}: {error}"
            );
        }
        // Non-ASCII digits must not slice a character in two.
        let error = parse_pin(&"é".repeat(32)).unwrap_err().to_string();
        assert!(error.starts_with("--tls-pin éé"), "{error}");
        let error = parse_pin("a\nb").unwrap_err().to_string();
        assert_eq!(
            error,
            "--tls-pin $'a\\nb': not a SHA-256 in hex (64 hex digits)"
        );
    }
}
