//! Where an input comes from or an output goes: standard input or output, a file, or a TCP
//! endpoint in socat's spelling (`tcp:HOST:PORT` connects, `tcp-listen:[ADDR:]PORT` listens).
//! A file whose name starts that way is reached as `./tcp:…`.

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;

/// A TCP endpoint as the user wrote it; names are resolved when the run starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// `tcp:HOST:PORT`
    Connect { host: String, port: u16 },
    /// `tcp-listen:[ADDR:]PORT`; without ADDR, every address of the machine.
    Listen { host: Option<String>, port: u16 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `-`: standard input or output.
    Standard,
    Path(PathBuf),
    Tcp(Address),
}

const CONNECT: &str = "tcp:";
const LISTEN: &str = "tcp-listen:";

fn port(text: &str) -> Result<u16, String> {
    match text.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        Ok(port) => Err(format!("port {port} is out of range (1 to 65535)")),
        Err(_) => Err(format!("'{text}' is not a port number")),
    }
}

/// `HOST:PORT`, the host in brackets when it is an IPv6 address.
fn host_and_port(text: &str) -> Result<(String, u16), String> {
    let (host, port_text) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest
                .split_once(']')
                .ok_or("an IPv6 address needs its closing bracket")?;
            let port_text = after.strip_prefix(':').ok_or("expected :PORT after ]")?;
            (host, port_text)
        }
        None => {
            let (host, port_text) = text.rsplit_once(':').ok_or("expected HOST:PORT")?;
            if host.contains(':') {
                return Err("write an IPv6 address in brackets: [ADDR]:PORT".into());
            }
            (host, port_text)
        }
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    Ok((host.to_string(), port(port_text)?))
}

impl Address {
    /// `HOST:PORT`, as `--connect` takes it.
    pub fn connect(text: &str) -> Result<Address, String> {
        let (host, port) = host_and_port(text)?;
        Ok(Address::Connect { host, port })
    }

    /// `[ADDR:]PORT`, as `--listen` takes it.
    pub fn listen(text: &str) -> Result<Address, String> {
        if !text.contains(':') {
            return Ok(Address::Listen {
                host: None,
                port: port(text)?,
            });
        }
        let (host, port) = host_and_port(text)?;
        Ok(Address::Listen {
            host: Some(host),
            port,
        })
    }

    /// The address in socat's spelling, or `None` when `text` is not spelled as one.
    pub fn spelled(text: &str) -> Option<Result<Address, String>> {
        let parsed = match (text.strip_prefix(LISTEN), text.strip_prefix(CONNECT)) {
            (Some(rest), _) => Address::listen(rest),
            (None, Some(rest)) => Address::connect(rest),
            (None, None) => return None,
        };
        Some(parsed.map_err(|why| format!("{text}: {why}")))
    }

    pub fn host(&self) -> Option<&str> {
        match self {
            Address::Connect { host, .. } => Some(host),
            Address::Listen { host, .. } => host.as_deref(),
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Address::Connect { port, .. } | Address::Listen { port, .. } => *port,
        }
    }

    pub fn listens(&self) -> bool {
        matches!(self, Address::Listen { .. })
    }
}

/// The name messages and stats use: the spelling the user would write.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = |host: &str| match host.contains(':') {
            true => format!("[{host}]"),
            false => host.to_string(),
        };
        match self {
            Address::Connect { host: h, port } => write!(f, "{CONNECT}{}:{port}", host(h)),
            Address::Listen { host: None, port } => write!(f, "{LISTEN}{port}"),
            Address::Listen {
                host: Some(h),
                port,
            } => write!(f, "{LISTEN}{}:{port}", host(h)),
        }
    }
}

impl Target {
    /// A FILE argument or an output's PATH: `-`, an address, or else a path.
    pub fn parse(text: &OsStr) -> Result<Target, String> {
        if text == "-" {
            return Ok(Target::Standard);
        }
        match text.to_str().and_then(Address::spelled) {
            Some(address) => address.map(Target::Tcp),
            None => Ok(Target::Path(PathBuf::from(text))),
        }
    }
}

/// clap's parser for FILE arguments, which may not be UTF-8.
#[derive(Clone)]
pub struct TargetParser;

impl clap::builder::TypedValueParser for TargetParser {
    type Value = Target;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Target, clap::Error> {
        Target::parse(value).map_err(|why| {
            cmd.clone()
                .error(clap::error::ErrorKind::ValueValidation, why)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Target, String> {
        Target::parse(OsStr::new(text))
    }

    #[test]
    fn socat_spellings_are_addresses() {
        let connect = |host: &str, port| {
            Target::Tcp(Address::Connect {
                host: host.into(),
                port,
            })
        };
        assert_eq!(
            parsed("tcp:example.org:9000"),
            Ok(connect("example.org", 9000))
        );
        assert_eq!(parsed("tcp:[::1]:80"), Ok(connect("::1", 80)));
        assert_eq!(
            parsed("tcp-listen:9000"),
            Ok(Target::Tcp(Address::Listen {
                host: None,
                port: 9000
            }))
        );
        assert_eq!(
            parsed("tcp-listen:[::1]:9000"),
            Ok(Target::Tcp(Address::Listen {
                host: Some("::1".into()),
                port: 9000
            }))
        );
    }

    #[test]
    fn other_names_are_paths_and_dash_is_standard() {
        assert_eq!(parsed("-"), Ok(Target::Standard));
        assert_eq!(parsed("./tcp:a:1"), Ok(Target::Path("./tcp:a:1".into())));
        assert_eq!(parsed("tcpdump"), Ok(Target::Path("tcpdump".into())));
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        assert_eq!(
            parsed("tcp:nohost"),
            Err("tcp:nohost: expected HOST:PORT".into())
        );
        assert_eq!(
            parsed("tcp:host:99999"),
            Err("tcp:host:99999: port 99999 is out of range (1 to 65535)".into())
        );
        assert!(parsed("tcp:::1:80").unwrap_err().contains("brackets"));
        assert!(parsed("tcp::80").unwrap_err().contains("host is empty"));
        assert!(parsed("tcp-listen:").is_err());
        assert!(parsed("tcp:[::1:80").is_err());
    }

    #[test]
    fn an_address_is_named_as_it_is_spelled() {
        for text in [
            "tcp:h:1",
            "tcp:[::1]:2",
            "tcp-listen:3",
            "tcp-listen:[::]:4",
            "tcp-listen:127.0.0.1:5",
        ] {
            let Ok(Target::Tcp(address)) = parsed(text) else {
                panic!("{text}")
            };
            assert_eq!(address.to_string(), text);
        }
    }
}
