//! Requests from the control socket, answered by the steering loop itself: it holds the stats
//! and the knobs (rates, pauses, the policy, the outputs), and it never waits on the data.

use std::sync::mpsc;
use std::time::Instant;

use crate::control::command::{Command, Side};
use crate::control::reply::Reply;
use crate::report::Render;
use crate::report::human::Human;
use crate::report::json::Json;
use crate::report::snapshot::{Event, Rates};
use crate::supervise::message::Message;
use crate::supervise::signals;
use crate::supervise::steer::Steering;

/// A rendered line without its newline.
fn rendered(render: &dyn Render, snapshot: &crate::report::snapshot::Snapshot) -> String {
    let mut line = Vec::new();
    let _ = render.render(snapshot, &mut line);
    String::from_utf8_lossy(&line).trim_end().to_string()
}

impl Steering {
    pub(super) fn on_control(&mut self, command: Command, reply: mpsc::Sender<String>) {
        let answer = match command {
            Command::Stats => self.stats_reply(),
            Command::Rate(side, rate) => self.set_rate(side, rate),
            Command::Pause(side) => self.set_paused(side, true),
            Command::Resume(side) => self.set_paused(side, false),
            Command::OnFull(policy) => {
                self.stages.probe.set_policy(policy);
                Reply::ok().text("on_full", &policy.name()).done()
            }
            Command::Detach(name) => self.detach_on_request(&name),
            // The connection has answered already: see `control::server`.
            Command::Stop => {
                self.on_message(Message::Signal(libc::SIGTERM));
                return;
            }
        };
        let _ = reply.send(answer);
    }

    /// The record of this moment, with the rates since the last query (or since the start),
    /// in JSON and as the human line.
    fn stats_reply(&mut self) -> String {
        let now = Instant::now();
        let mut snapshot = self.snapshot(Event::Query, None);
        let totals = self.stages.counters.totals();
        let (since, before) = self.last_query.unwrap_or((self.start, Default::default()));
        let secs = now.saturating_duration_since(since).as_secs_f64().max(1e-3);
        snapshot.rates = Some(Rates {
            input: (totals.input.bytes - before.input.bytes) as f64 / secs,
            output: (totals.output.bytes - before.output.bytes) as f64 / secs,
        });
        self.last_query = Some((now, totals));
        Reply::ok()
            .number("pid", Some(u64::from(std::process::id())))
            .raw("stats", &rendered(&Json, &snapshot))
            .text("human", &rendered(&Human, &snapshot))
            .done()
    }

    fn set_rate(&mut self, side: Side, rate: Option<u64>) -> String {
        let controls = &self.stages.controls;
        match side {
            Side::In => controls.input.set(rate),
            Side::Out => controls.outputs.iter().for_each(|dial| dial.set(rate)),
        }
        Reply::ok()
            .text("side", side.name())
            .number("rate_Bps", rate)
            .done()
    }

    fn set_paused(&mut self, side: Option<Side>, paused: bool) -> String {
        let now = Instant::now();
        let (input, output) = self.stages.controls.pauses.set(side, paused, now);
        if let Some(stall) = &mut self.stall {
            stall.excuse(now);
        }
        Reply::ok()
            .flag("paused_in", input)
            .flag("paused_out", output)
            .done()
    }

    /// Lets an output go by its name or its index, as a lane that stayed full would be.
    fn detach_on_request(&mut self, name: &str) -> String {
        if self.outputs.len() < 2 {
            return Reply::error("detach needs several outputs: the one output is the run");
        }
        let index = (0..self.outputs.len())
            .find(|&i| self.outputs.name(i) == name)
            .or_else(|| {
                name.parse()
                    .ok()
                    .filter(|&i: &usize| i < self.outputs.len())
            });
        let Some(index) = index else {
            return Reply::error(&format!("no output named {name}"));
        };
        if self.outputs.has_ended(index) || self.outputs.is_detached(index) {
            return Reply::error(&format!("{name} is not open"));
        }
        self.stages.probe.close_lane(index);
        let line = self.outputs.detach(index, "detached on request");
        self.reporter.line(&line);
        signals::wake(self.stages.writer_thread(index));
        Reply::ok()
            .text("detached", self.outputs.name(index))
            .done()
    }
}
