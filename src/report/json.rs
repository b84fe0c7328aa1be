//! The JSON Lines form of a stats record, walked from the snapshot's field list.

use std::io::{self, Write};

use crate::report::Render;
use crate::report::parts::Part;
use crate::report::snapshot::{Field, Snapshot, Value};

pub(crate) struct Json;

/// Writes `text` as a JSON string, escaped as RFC 8259 requires.
pub(crate) fn write_string(w: &mut impl Write, text: &str) -> io::Result<()> {
    w.write_all(b"\"")?;
    for c in text.chars() {
        match c {
            '"' => w.write_all(b"\\\"")?,
            '\\' => w.write_all(b"\\\\")?,
            '\n' => w.write_all(b"\\n")?,
            '\r' => w.write_all(b"\\r")?,
            '\t' => w.write_all(b"\\t")?,
            c if u32::from(c) < 0x20 => write!(w, "\\u{:04x}", u32::from(c))?,
            c => write!(w, "{c}")?,
        }
    }
    w.write_all(b"\"")
}

fn write_value(w: &mut impl Write, value: Value) -> io::Result<()> {
    match value {
        Value::Count(n) => write!(w, "{n}"),
        Value::Seconds(d) => write!(w, "{:.6}", d.as_secs_f64()),
        Value::Rate(r) => write!(w, "{r:.1}"),
        Value::Flag(b) => write!(w, "{b}"),
        Value::Text(t) | Value::Maybe(Some(t)) => write_string(w, t),
        Value::Maybe(None) | Value::Digest(None) => write!(w, "null"),
        Value::Digest(Some(digest)) => write_string(w, &crate::net::hex(&digest)),
    }
}

fn write_fields(w: &mut impl Write, fields: &[Field]) -> io::Result<()> {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        write_string(w, field.name)?;
        w.write_all(b":")?;
        write_value(w, field.value)?;
    }
    Ok(())
}

/// `"key":[{"name":...,<fields>},...]`
fn write_parts(w: &mut impl Write, key: &str, parts: &[Part]) -> io::Result<()> {
    w.write_all(b",")?;
    write_string(w, key)?;
    w.write_all(b":[")?;
    for (i, part) in parts.iter().enumerate() {
        w.write_all(if i > 0 { b",{" } else { b"{" })?;
        w.write_all(b"\"name\":")?;
        write_string(w, &part.name)?;
        if !part.fields.is_empty() {
            w.write_all(b",")?;
        }
        write_fields(w, &part.fields)?;
        w.write_all(b"}")?;
    }
    w.write_all(b"]")
}

impl Render for Json {
    fn render(&self, snapshot: &Snapshot, w: &mut Vec<u8>) -> io::Result<()> {
        w.write_all(b"{")?;
        write_fields(w, &snapshot.fields())?;
        write_parts(w, "inputs", &snapshot.inputs)?;
        write_parts(w, "outputs", &snapshot.outputs)?;
        w.write_all(b"}\n")
    }

    fn note(&self, message: &str, w: &mut Vec<u8>) -> io::Result<()> {
        w.write_all(b"{\"event\":\"note\",\"message\":")?;
        write_string(w, message)?;
        w.write_all(b"}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::snapshot::{Event, Rates, sample};

    fn render(snapshot: &Snapshot) -> String {
        let mut out = Vec::new();
        Json.render(snapshot, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_has_every_key_on_one_line() {
        let text = render(&sample());
        assert!(
            text.ends_with("}\n") && text.matches('\n').count() == 1,
            "{text}"
        );
        for key in [
            "\"event\":\"exit\"",
            "\"elapsed_s\":2.000000",
            "\"bytes_in\":3145728",
            "\"bytes_out\":2097152",
            "\"bytes_dropped\":1048576",
            "\"chunks_in\":48",
            "\"chunks_out\":32",
            "\"chunks_dropped\":16",
            "\"records_dropped\":0",
            "\"queue_chunks\":0",
            "\"queue_bytes\":0",
            "\"queue_capacity_chunks\":16",
            "\"queue_capacity_bytes\":1048576",
            "\"queue_peak_chunks\":16",
            "\"queue_peak_bytes\":1048576",
            "\"reader_blocked_s\":0.250000",
            "\"writer_idle_s\":0.010000",
            "\"throttled_s\":0.500000",
            "\"throttled_read_s\":0.200000",
            "\"throttled_write_s\":0.300000",
            "\"bytes_unsent\":0",
            "\"output_closed\":false",
            "\"path\":\"copy\",\"path_in\":\"copy\",\"path_out\":\"copy\"",
            "\"exit_status\":0",
        ] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
        assert!(!text.contains("rate_in_Bps"));
    }

    #[test]
    fn interval_json_has_rates_and_no_exit_status() {
        let mut snapshot = sample();
        snapshot.event = Event::Interval;
        snapshot.exit_status = None;
        snapshot.rates = Some(Rates {
            input: 1024.0,
            output: 512.0,
        });
        let text = render(&snapshot);
        assert!(text.contains("\"event\":\"interval\""));
        assert!(text.contains("\"rate_in_Bps\":1024.0,\"rate_out_Bps\":512.0"));
        assert!(!text.contains("exit_status"));
    }

    #[test]
    fn a_note_is_one_json_record() {
        let mut out = Vec::new();
        Json.note("cannot \"splice\": no", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"event\":\"note\",\"message\":\"cannot \\\"splice\\\": no\"}\n"
        );
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        write_string(&mut out, "a \"b\" \\ c\nd\u{1}").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a \"b\" \\ c\nd\u0001""#
        );
    }
}
