//! The Prometheus text format (0.0.4) of a stats record, walked from the snapshot's field list
//! as the JSON form is, so that a new stats key becomes a metric with no change here.
//!
//! The rule: every counter and gauge field of the record is one family, `bpipe_` + its key,
//! with the unit spelled as Prometheus wants (`_s` → `_seconds`, `_Bps` → `_bytes_per_second`,
//! `_bytes` where bytes are not already named) and `_total` on a counter. Two kinds of key are
//! split into series: a key for one side (`throttled_read_s`, `throttled_write_s`) is one
//! family with a `side` label (`in`, `out`), and the key of both sides together (`throttled_s`)
//! is left out, as `sum` gives it; a key of what an output wrote (`bytes_out`, `chunks_out`) is
//! one series per output, labelled `output`, from the outputs' parts. Label fields are not
//! metrics and are left out.

use std::fmt::Write;

use crate::report::parts::Part;
use crate::report::snapshot::{Field, Kind, Snapshot, Unit, Value};

/// The label names bpipe gives series itself: a constant label may not take them.
pub(crate) const OWN_LABELS: [&str; 2] = ["output", "side"];

/// Keys for one side of the relay, as the record spells them, and that side's label value.
const SIDES: [(&str, &str); 2] = [("_read", "in"), ("_write", "out")];

/// The unit suffixes of the record's keys.
const KEY_UNITS: [&str; 2] = ["_s", "_Bps"];

struct Sample {
    labels: Vec<(&'static str, String)>,
    /// As the format writes it.
    value: String,
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<Sample>,
}

/// A key as its stem and its unit suffix: `throttled_read_s` is `throttled_read` and `_s`.
fn stem(key: &str) -> (&str, &str) {
    KEY_UNITS
        .iter()
        .find_map(|unit| key.strip_suffix(unit).map(|stem| (stem, *unit)))
        .unwrap_or((key, ""))
}

/// For a key of one side, the key of both sides together and the side: `throttled_read_s` is
/// `throttled_s` for `in`.
fn sided(key: &str) -> Option<(String, &'static str)> {
    let (stem, unit) = stem(key);
    SIDES.iter().find_map(|(suffix, side)| {
        stem.strip_suffix(suffix)
            .map(|base| (format!("{base}{unit}"), *side))
    })
}

/// The metric name of a stats key (see the module's rule).
fn metric_name(key: &str, kind: Kind, unit: Unit) -> String {
    let (stem, _) = stem(key);
    let mut name = format!("bpipe_{stem}");
    match unit {
        Unit::Seconds => name.push_str("_seconds"),
        Unit::BytesPerSecond => name.push_str("_bytes_per_second"),
        Unit::Bytes if !stem.split('_').any(|word| word == "bytes") => name.push_str("_bytes"),
        Unit::Bytes | Unit::Chunks | Unit::Records | Unit::None => {}
    }
    if kind == Kind::Counter {
        name.push_str("_total");
    }
    name
}

fn unit_words(unit: Unit) -> &'static str {
    match unit {
        Unit::Bytes => ", in bytes",
        Unit::Chunks => ", in chunks",
        Unit::Records => ", in records",
        Unit::Seconds => ", in seconds",
        Unit::BytesPerSecond => ", in bytes per second",
        Unit::None => "",
    }
}

/// A value as the format writes it; text is not a number.
fn number(value: Value) -> Option<String> {
    match value {
        Value::Count(n) => Some(n.to_string()),
        Value::Seconds(d) => Some(format!("{:.6}", d.as_secs_f64())),
        Value::Rate(r) => Some(format!("{r:.1}")),
        Value::Flag(b) => Some(u8::from(b).to_string()),
        Value::Text(_) | Value::Maybe(_) | Value::Digest(_) => None,
    }
}

/// Whether a field is a metric at all: a counter or a gauge with a number.
fn measured(field: &Field) -> bool {
    field.kind != Kind::Label && number(field.value).is_some()
}

/// Every output's part carries this key of what the output wrote.
fn per_output(key: &str, outputs: &[Part]) -> bool {
    key.ends_with("_out")
        && !outputs.is_empty()
        && outputs
            .iter()
            .all(|part| part.fields.iter().any(|f| f.name == key))
}

/// The family a field belongs to, with its samples; `None` for a field that is not rendered.
fn family(field: &Field, fields: &[Field], outputs: &[Part]) -> Option<Family> {
    if !measured(field) {
        return None;
    }
    let key = field.name;
    let unit = unit_words(field.unit);
    let (family_key, help, samples) = if let Some((both, side)) = sided(key) {
        let (stem, suffix) = stem(&both);
        let help = format!(
            "The stats keys {stem}_read{suffix} (side=in) and {stem}_write{suffix} (side=out){unit}."
        );
        let sample = Sample {
            labels: vec![("side", side.to_string())],
            value: number(field.value)?,
        };
        (both, help, vec![sample])
    } else if fields
        .iter()
        .any(|f| sided(f.name).is_some_and(|(both, _)| both == key))
    {
        return None;
    } else if per_output(key, outputs) {
        let help = format!("The stats key {key} of each output (outputs[].{key}){unit}.");
        let samples = outputs
            .iter()
            .filter_map(|part| {
                let value = number(part.fields.iter().find(|f| f.name == key)?.value)?;
                Some(Sample {
                    labels: vec![("output", part.name.clone())],
                    value,
                })
            })
            .collect();
        (key.to_string(), help, samples)
    } else {
        let help = format!("The stats key {key}{unit}.");
        let sample = Sample {
            labels: Vec::new(),
            value: number(field.value)?,
        };
        (key.to_string(), help, vec![sample])
    };
    Some(Family {
        name: metric_name(&family_key, field.kind, field.unit),
        help,
        kind: field.kind,
        samples,
    })
}

fn up(running: bool) -> Family {
    Family {
        name: "bpipe_up".into(),
        help: "1 while bpipe relays, 0 once it has ended (the last write of --metrics-file)."
            .into(),
        kind: Kind::Gauge,
        samples: vec![Sample {
            labels: Vec::new(),
            value: u8::from(running).to_string(),
        }],
    }
}

/// Every family of a record, `bpipe_up` first; fields of one family are merged into it.
fn families(snapshot: &Snapshot, running: bool) -> Vec<Family> {
    let fields = snapshot.fields();
    let mut families = vec![up(running)];
    for family in fields
        .iter()
        .filter_map(|field| family(field, &fields, &snapshot.outputs))
    {
        match families.iter_mut().find(|f| f.name == family.name) {
            Some(known) => known.samples.extend(family.samples),
            None => families.push(family),
        }
    }
    families
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A HELP text as the format wants it: backslash and newline escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

fn write_sample(out: &mut String, name: &str, sample: &Sample, constant: &[(String, String)]) {
    out.push_str(name);
    let labels = constant
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(sample.labels.iter().map(|(k, v)| (*k, v.as_str())));
    for (i, (key, value)) in labels.enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        let _ = write!(out, "{key}=\"{}\"", escape_label(value));
    }
    if !constant.is_empty() || !sample.labels.is_empty() {
        out.push('}');
    }
    out.push(' ');
    out.push_str(&sample.value);
    out.push('\n');
}

/// The record in the Prometheus text format: `running` is false for the last one, at exit;
/// `labels` go on every series.
pub(crate) fn render(snapshot: &Snapshot, running: bool, labels: &[(String, String)]) -> String {
    let mut out = String::with_capacity(4096);
    for family in families(snapshot, running) {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::Label => "gauge",
        };
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(&family.help));
        let _ = writeln!(out, "# TYPE {} {kind}", family.name);
        for sample in &family.samples {
            write_sample(&mut out, &family.name, sample, labels);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::snapshot::{Rates, sample};
    use std::time::Duration;

    fn part(name: &str, bytes_out: u64) -> Part {
        Part {
            name: name.into(),
            fields: vec![
                Field {
                    name: "bytes_out",
                    kind: Kind::Counter,
                    unit: Unit::Bytes,
                    value: Value::Count(bytes_out),
                },
                Field {
                    name: "chunks_out",
                    kind: Kind::Counter,
                    unit: Unit::Chunks,
                    value: Value::Count(1),
                },
                Field {
                    name: "state",
                    kind: Kind::Label,
                    unit: Unit::None,
                    value: Value::Text("open"),
                },
            ],
        }
    }

    fn running_sample() -> Snapshot {
        let mut snapshot = sample();
        snapshot.rates = Some(Rates {
            input: 1024.0,
            output: 512.0,
        });
        snapshot.outputs = vec![part("a.out", 2 << 20)];
        snapshot
    }

    /// The value of the one series of `text` that starts with `series` (name and labels).
    fn value(text: &str, series: &str) -> String {
        let found: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .collect();
        assert_eq!(found.len(), 1, "{series} in\n{text}");
        found[0].to_string()
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        use Kind::{Counter, Gauge};
        for (key, kind, unit, name) in [
            ("bytes_in", Counter, Unit::Bytes, "bpipe_bytes_in_total"),
            ("queue_bytes", Gauge, Unit::Bytes, "bpipe_queue_bytes"),
            ("spool_bytes", Gauge, Unit::Bytes, "bpipe_spool_bytes"),
            ("held", Gauge, Unit::Bytes, "bpipe_held_bytes"),
            ("queue_chunks", Gauge, Unit::Chunks, "bpipe_queue_chunks"),
            (
                "records_dropped",
                Counter,
                Unit::Records,
                "bpipe_records_dropped_total",
            ),
            (
                "elapsed_s",
                Counter,
                Unit::Seconds,
                "bpipe_elapsed_seconds_total",
            ),
            (
                "rate_in_Bps",
                Gauge,
                Unit::BytesPerSecond,
                "bpipe_rate_in_bytes_per_second",
            ),
        ] {
            assert_eq!(metric_name(key, kind, unit), name);
        }
    }

    #[test]
    fn the_issue_names_are_there() {
        let text = render(&running_sample(), true, &[]);
        for (series, want) in [
            ("bpipe_up", "1"),
            ("bpipe_bytes_in_total", "3145728"),
            ("bpipe_bytes_out_total{output=\"a.out\"}", "2097152"),
            ("bpipe_bytes_dropped_total", "1048576"),
            ("bpipe_records_dropped_total", "0"),
            ("bpipe_queue_bytes", "0"),
            ("bpipe_queue_capacity_bytes", "1048576"),
            ("bpipe_reader_blocked_seconds_total", "0.250000"),
            ("bpipe_writer_idle_seconds_total", "0.010000"),
            ("bpipe_throttled_seconds_total{side=\"in\"}", "0.200000"),
            ("bpipe_throttled_seconds_total{side=\"out\"}", "0.300000"),
            ("bpipe_rate_out_bytes_per_second", "512.0"),
        ] {
            assert_eq!(value(&text, series), want, "{series}");
        }
        assert!(text.contains("# TYPE bpipe_bytes_in_total counter\n"));
        assert!(text.contains("# TYPE bpipe_queue_bytes gauge\n"));
        assert!(text.contains("# HELP bpipe_bytes_in_total The stats key bytes_in, in bytes.\n"));
        assert_eq!(
            value(&render(&running_sample(), false, &[]), "bpipe_up"),
            "0"
        );
    }

    /// A new counter or gauge in the record is a metric with no change here.
    #[test]
    fn every_counter_and_gauge_field_is_a_family_with_help_and_type() {
        let snapshot = running_sample();
        let text = render(&snapshot, true, &[]);
        let fields = snapshot.fields();
        for field in fields.iter().filter(|f| measured(f)) {
            let key = sided(field.name).map_or(field.name.to_string(), |(both, _)| both);
            let name = metric_name(&key, field.kind, field.unit);
            let summed = fields
                .iter()
                .any(|f| sided(f.name).is_some_and(|(b, _)| b == field.name));
            if summed {
                let unlabelled = format!("{name} ");
                assert!(
                    !text.lines().any(|l| l.starts_with(&unlabelled)),
                    "{name} is the sum of its sides"
                );
                continue;
            }
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {}",
                field.name
            );
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "no TYPE for {}",
                field.name
            );
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{name} "))
                        || l.starts_with(&format!("{name}{{"))),
                "no series for {}",
                field.name
            );
        }
        let families = text.matches("# TYPE ").count();
        assert_eq!(families, text.matches("# HELP ").count());
        // Labels are not metrics.
        assert!(!text.contains("bpipe_event") && !text.contains("bpipe_path"));
    }

    #[test]
    fn one_series_per_output_and_each_family_once() {
        let mut snapshot = running_sample();
        snapshot.outputs = vec![part("a", 10), part("b", 20)];
        let text = render(&snapshot, true, &[]);
        assert_eq!(value(&text, "bpipe_bytes_out_total{output=\"a\"}"), "10");
        assert_eq!(value(&text, "bpipe_bytes_out_total{output=\"b\"}"), "20");
        assert_eq!(value(&text, "bpipe_chunks_out_total{output=\"b\"}"), "1");
        let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let count = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), count, "a family is split:\n{text}");
    }

    #[test]
    fn constant_labels_are_on_every_series_and_values_are_escaped() {
        let mut snapshot = running_sample();
        snapshot.outputs = vec![part("we\"ird\\na\nme", 7)];
        let labels = [
            ("job".to_string(), "backup".to_string()),
            ("note".to_string(), "a \"b\" \\ c\nd".to_string()),
        ];
        let text = render(&snapshot, true, &labels);
        let constant = r#"{job="backup",note="a \"b\" \\ c\nd""#;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains(constant), "{line}");
        }
        let series = r#"bpipe_bytes_out_total{job="backup",note="a \"b\" \\ c\nd",output="we\"ird\\na\nme"}"#;
        assert_eq!(value(&text, series), "7");
        assert_eq!(text.lines().count(), text.matches('\n').count());
    }

    #[test]
    fn help_is_escaped() {
        assert_eq!(escape_help("a\\b\nc"), r"a\\b\nc");
    }

    #[test]
    fn seconds_and_rates_are_plain_numbers() {
        let mut snapshot = running_sample();
        snapshot.run.elapsed = Duration::from_micros(1_500_001);
        let text = render(&snapshot, true, &[]);
        assert_eq!(value(&text, "bpipe_elapsed_seconds_total"), "1.500001");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let number = line.rsplit(' ').next().unwrap();
            assert!(number.parse::<f64>().is_ok_and(f64::is_finite), "{line}");
        }
    }
}
