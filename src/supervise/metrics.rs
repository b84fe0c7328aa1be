//! The run's Prometheus metrics: the file rewritten every interval and at exit, and the text the
//! HTTP endpoint serves, refreshed by the steering loop from the same readings as every other
//! record.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::control::http::{Body, MetricsServer};
use crate::io::metrics_file::MetricsFile;
use crate::plan::MetricsSpec;
use crate::report::prometheus;
use crate::report::snapshot::{Rates, Snapshot};

/// How often the served text is refreshed: a scrape sees the run as it was at most this long
/// ago (and as it is at the end).
const REFRESH: Duration = Duration::from_millis(250);

/// The rates in the metrics are over about this long.
const RATE_WINDOW: Duration = Duration::from_secs(1);

struct Scheduled<T> {
    target: T,
    next: Instant,
}

/// The byte counts at some moment of the run's own clock (`elapsed_s`), to measure rates
/// against.
#[derive(Default)]
struct RateWindow {
    at: Duration,
    bytes_in: u64,
    bytes_out: u64,
    rates: Rates,
}

impl RateWindow {
    /// The rates over the last window; in the first one, since the start.
    fn update(&mut self, snapshot: &Snapshot) -> Rates {
        let (now, accounts) = (snapshot.run.elapsed, &snapshot.traffic.accounts);
        let span = now.saturating_sub(self.at);
        let first = self.at.is_zero();
        if span >= RATE_WINDOW || (first && !span.is_zero()) {
            let per_sec =
                |now: u64, then: u64| now.saturating_sub(then) as f64 / span.as_secs_f64();
            self.rates = Rates {
                input: per_sec(accounts.bytes_in, self.bytes_in),
                output: per_sec(accounts.bytes_out, self.bytes_out),
            };
            if span >= RATE_WINDOW {
                (self.at, self.bytes_in, self.bytes_out) =
                    (now, accounts.bytes_in, accounts.bytes_out);
            }
        }
        self.rates
    }
}

pub(crate) struct Metrics {
    labels: Vec<(String, String)>,
    file: Option<Scheduled<MetricsFile>>,
    interval: Duration,
    /// The latest text, which the HTTP thread serves, and the server.
    served: Option<(Scheduled<Arc<Mutex<String>>>, MetricsServer)>,
    rates: RateWindow,
    /// The last write of the file failed and was reported: the next failures are not.
    failing: bool,
}

impl Metrics {
    /// `None` without --metrics-file or --metrics-listen. A file that cannot be written or an
    /// address that cannot be had is an error now, before any byte moves. Both are first due at
    /// `now`.
    pub(crate) fn new(spec: &MetricsSpec, now: Instant) -> anyhow::Result<Option<Metrics>> {
        if spec.file.is_none() && spec.listen.is_none() {
            return Ok(None);
        }
        let file = spec.file.as_deref().map(MetricsFile::new).transpose()?;
        let served = match spec.listen {
            Some(addr) => {
                let text = Arc::new(Mutex::new(String::new()));
                let latest = Arc::clone(&text);
                let body: Body = Arc::new(move || {
                    latest
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone()
                });
                let server = MetricsServer::start(addr, body)?;
                Some((
                    Scheduled {
                        target: text,
                        next: now,
                    },
                    server,
                ))
            }
            None => None,
        };
        Ok(Some(Metrics {
            labels: spec.labels.clone(),
            file: file.map(|target| Scheduled { target, next: now }),
            interval: spec.interval,
            served,
            rates: RateWindow::default(),
            failing: false,
        }))
    }

    /// When the file or the served text is next due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let file = self.file.as_ref().map(|f| f.next);
        let served = self.served.as_ref().map(|(s, _)| s.next);
        file.into_iter().chain(served).min()
    }

    pub(crate) fn due(&self, now: Instant) -> bool {
        self.next_deadline().is_some_and(|due| now >= due)
    }

    /// Renders a record of the running relay for whichever is due; an error to report when the
    /// file cannot be written (once, until a write succeeds again).
    pub(crate) fn on_tick(&mut self, now: Instant, snapshot: &Snapshot) -> Option<anyhow::Error> {
        let text = self.render(snapshot, true);
        if let Some((served, _)) = &mut self.served {
            *served.target.lock().unwrap_or_else(PoisonError::into_inner) = text.clone();
            served.next = now + REFRESH;
        }
        let file = self.file.as_mut().filter(|file| now >= file.next)?;
        // A late tick does not bunch writes up: the next one is a whole interval away.
        let next = file.next + self.interval;
        file.next = if next <= now {
            now + self.interval
        } else {
            next
        };
        self.write(&text)
    }

    /// The last record, with `bpipe_up` 0, for the file and the served text alike.
    pub(crate) fn at_exit(&mut self, snapshot: &Snapshot) -> Option<anyhow::Error> {
        let text = self.render(snapshot, false);
        if let Some((served, _)) = &self.served {
            *served.target.lock().unwrap_or_else(PoisonError::into_inner) = text.clone();
        }
        self.file.as_ref()?;
        self.write(&text)
    }

    fn render(&mut self, snapshot: &Snapshot, running: bool) -> String {
        let mut snapshot = snapshot.clone();
        snapshot.rates = Some(self.rates.update(&snapshot));
        prometheus::render(&snapshot, running, &self.labels)
    }

    fn write(&mut self, text: &str) -> Option<anyhow::Error> {
        let written = self.file.as_ref()?.target.write(text);
        let report = written.is_err() && !self.failing;
        self.failing = written.is_err();
        written.err().filter(|_| report)
    }

    #[cfg(test)]
    fn served(&self) -> Option<(std::net::SocketAddr, String)> {
        let (text, server) = self.served.as_ref()?;
        let text = text.target.lock().unwrap().clone();
        Some((server.local_addr(), text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::snapshot::sample;
    use std::path::PathBuf;

    fn spec(file: Option<PathBuf>, listen: bool) -> MetricsSpec {
        MetricsSpec {
            file,
            listen: listen.then(|| "127.0.0.1:0".parse().unwrap()),
            labels: vec![("job".into(), "test".into())],
            interval: Duration::from_secs(10),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bpipe-supmetrics-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn nothing_without_a_file_or_a_listener() {
        assert!(
            Metrics::new(&spec(None, false), Instant::now())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_file_is_written_every_interval_and_at_exit_with_up_0() {
        let dir = scratch("file");
        let path = dir.join("bpipe.prom");
        let t0 = Instant::now();
        let mut metrics = Metrics::new(&spec(Some(path.clone()), false), t0)
            .unwrap()
            .unwrap();
        assert!(metrics.due(t0));
        assert!(metrics.on_tick(t0, &sample()).is_none());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("bpipe_up{job=\"test\"} 1\n"), "{text}");
        assert_eq!(metrics.next_deadline(), Some(t0 + Duration::from_secs(10)));
        // Three intervals late: one write now, the next not at once.
        let late = t0 + Duration::from_secs(40);
        assert!(metrics.due(late));
        metrics.on_tick(late, &sample());
        assert!(!metrics.due(late));
        metrics.at_exit(&sample());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("bpipe_up{job=\"test\"} 0\n"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_served_text_is_refreshed_every_tick_of_its_own() {
        let t0 = Instant::now();
        let mut metrics = Metrics::new(&spec(None, true), t0).unwrap().unwrap();
        metrics.on_tick(t0, &sample());
        assert_eq!(metrics.next_deadline(), Some(t0 + REFRESH));
        let (addr, text) = metrics.served().unwrap();
        assert!(text.contains("bpipe_up{job=\"test\"} 1\n"), "{text}");
        metrics.at_exit(&sample());
        assert!(
            metrics
                .served()
                .unwrap()
                .1
                .contains("bpipe_up{job=\"test\"} 0\n")
        );
        // The address is held while the metrics live.
        assert!(std::net::TcpListener::bind(addr).is_err());
    }

    #[test]
    fn a_failing_file_is_reported_once() {
        let dir = scratch("failing");
        let path = dir.join("bpipe.prom");
        let t0 = Instant::now();
        let mut metrics = Metrics::new(&spec(Some(path), false), t0).unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let second = t0 + Duration::from_secs(10);
        assert!(metrics.on_tick(t0, &sample()).is_some());
        assert!(metrics.on_tick(second, &sample()).is_none());
        assert!(metrics.at_exit(&sample()).is_none());
    }

    #[test]
    fn rates_are_over_the_last_second() {
        let mut window = RateWindow::default();
        let mut at = |ms: u64, bytes: u64| {
            let mut s = sample();
            s.run.elapsed = Duration::from_millis(ms);
            s.traffic.accounts.bytes_in = bytes;
            s.traffic.accounts.bytes_out = bytes / 2;
            window.update(&s)
        };
        assert_eq!(at(500, 1000).input, 2000.0);
        assert_eq!(at(1000, 1000).input, 1000.0);
        // Within the window the last rates hold; at its end they are over the window.
        assert_eq!(at(1500, 5000).input, 1000.0);
        let rates = at(2000, 3000);
        assert_eq!((rates.input, rates.output), (2000.0, 1000.0));
    }
}
