//! bpipe's wire format between two bpipes. Each side opens with a hello; the sender then writes
//! one frame per chunk (an 8-byte header, then the payload as it is, so that it can still be
//! spliced), and an end frame carrying the byte count and the digest; the receiver answers with
//! an acknowledgement. A plain TCP stream cannot tell a finished transfer from a sender that
//! died (the kernel closes the socket either way): the end frame can.
//!
//! Every header is a kind byte and a 56-bit big-endian length.

use std::fmt;

pub(crate) const MAGIC: &[u8; 5] = b"BPIPE";
pub(crate) const VERSION: u8 = 1;
pub(crate) const HELLO_LEN: usize = 8;
pub(crate) const HEADER_LEN: usize = 8;
/// The end frame's body: the byte count, the digest algorithm and 32 bytes of digest.
pub(crate) const TRAILER_LEN: usize = 8 + 1 + 32;

/// Which way the data goes on this connection, seen from the side that says hello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Sends,
    Receives,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) version: u8,
    pub(crate) role: Role,
    /// This side wants every byte digested and the digests compared.
    pub(crate) checksum: bool,
}

/// What a received hello says that this bpipe cannot go on with.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HelloError {
    /// The peer does not speak bpipe's framed stream at all (nc, socat, mbuffer).
    NotBpipe,
    Version(u8),
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloError::NotBpipe => write!(
                f,
                "the peer does not speak bpipe's framed stream (use --raw with nc, socat or mbuffer)"
            ),
            HelloError::Version(v) => write!(
                f,
                "the peer speaks version {v} of bpipe's framed stream; this bpipe speaks {VERSION}"
            ),
        }
    }
}

impl Hello {
    pub(crate) fn encode(self) -> [u8; HELLO_LEN] {
        let mut bytes = [0; HELLO_LEN];
        bytes[..5].copy_from_slice(MAGIC);
        bytes[5] = self.version;
        bytes[6] = match self.role {
            Role::Sends => b'S',
            Role::Receives => b'R',
        };
        bytes[7] = u8::from(self.checksum);
        bytes
    }

    /// Reads the magic first, so that anything else is "not bpipe", and the version before
    /// the rest, whose meaning a later version may change.
    pub(crate) fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Hello, HelloError> {
        if &bytes[..5] != MAGIC {
            return Err(HelloError::NotBpipe);
        }
        if bytes[5] != VERSION {
            return Err(HelloError::Version(bytes[5]));
        }
        let role = match bytes[6] {
            b'S' => Role::Sends,
            b'R' => Role::Receives,
            _ => return Err(HelloError::NotBpipe),
        };
        Ok(Hello {
            version: bytes[5],
            role,
            checksum: bytes[7] & 1 == 1,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A chunk of the stream: `len` bytes of payload follow.
    Data,
    /// The end of the stream: a trailer of `TRAILER_LEN` bytes follows.
    End,
    /// The receiver got every byte, and the digest matched if there was one.
    Ack,
    /// The receiver got the end, but the count or the digest differ.
    Nak,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    pub(crate) len: u64,
}

const LEN_BITS: u32 = 56;

impl Header {
    pub(crate) fn encode(self) -> [u8; HEADER_LEN] {
        let kind = match self.kind {
            Kind::Data => b'D',
            Kind::End => b'E',
            Kind::Ack => b'A',
            Kind::Nak => b'N',
        };
        ((u64::from(kind) << LEN_BITS) | (self.len & ((1 << LEN_BITS) - 1))).to_be_bytes()
    }

    pub(crate) fn decode(bytes: [u8; HEADER_LEN]) -> Option<Header> {
        let word = u64::from_be_bytes(bytes);
        let kind = match (word >> LEN_BITS) as u8 {
            b'D' => Kind::Data,
            b'E' => Kind::End,
            b'A' => Kind::Ack,
            b'N' => Kind::Nak,
            _ => return None,
        };
        Some(Header {
            kind,
            len: word & ((1 << LEN_BITS) - 1),
        })
    }
}

/// The end frame's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Trailer {
    pub(crate) bytes: u64,
    /// The digest, when the stream was digested.
    pub(crate) digest: Option<[u8; 32]>,
}

impl Trailer {
    pub(crate) fn encode(self) -> [u8; TRAILER_LEN] {
        let mut out = [0; TRAILER_LEN];
        out[..8].copy_from_slice(&self.bytes.to_be_bytes());
        if let Some(digest) = self.digest {
            out[8] = 1;
            out[9..].copy_from_slice(&digest);
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8; TRAILER_LEN]) -> Trailer {
        let mut count = [0; 8];
        count.copy_from_slice(&bytes[..8]);
        let mut digest = [0; 32];
        digest.copy_from_slice(&bytes[9..]);
        Trailer {
            bytes: u64::from_be_bytes(count),
            digest: (bytes[8] == 1).then_some(digest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_hello_round_trips_and_anything_else_is_not_bpipe() {
        let hello = Hello {
            version: VERSION,
            role: Role::Receives,
            checksum: true,
        };
        assert_eq!(Hello::decode(&hello.encode()), Ok(hello));
        assert_eq!(Hello::decode(b"hello wo"), Err(HelloError::NotBpipe));
        let mut future = hello.encode();
        future[5] = 9;
        assert_eq!(Hello::decode(&future), Err(HelloError::Version(9)));
        assert!(HelloError::Version(9).to_string().contains("version 9"));
    }

    #[test]
    fn an_unknown_kind_is_not_a_header() {
        assert_eq!(Header::decode(*b"X\0\0\0\0\0\0\x01"), None);
    }

    proptest! {
        #[test]
        fn headers_round_trip(kind in 0..4usize, len in 0u64..(1 << 56)) {
            let kind = [Kind::Data, Kind::End, Kind::Ack, Kind::Nak][kind];
            let header = Header { kind, len };
            prop_assert_eq!(Header::decode(header.encode()), Some(header));
        }

        #[test]
        fn trailers_round_trip(bytes: u64, digest: Option<[u8; 32]>) {
            let trailer = Trailer { bytes, digest };
            prop_assert_eq!(Trailer::decode(&trailer.encode()), trailer);
        }
    }
}
