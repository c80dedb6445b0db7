//! What a running claim measured, beside its verdict: its figures
//! (outage ms...), what its probes saw through its faults (timelines), and
//! what it waits for now, for a person watching. The claim runner empties
//! it before each claim and hands what it holds to the claim's outcome.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A figure a kind judges on a budget, named once as a constant
/// (`const OUTAGE: Figure = Figure::new("failover outage (ms)")`): the kind
/// records it ([`Recorder::measured`]) and declares its budget
/// ([`Recorder::budget`]) through the same handle, so a budget can never
/// name a figure the kind spelt another way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figure(&'static str);

impl Figure {
    pub const fn new(name: &'static str) -> Figure {
        Figure(name)
    }

    /// Its name, as reports and `bench` print it.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

/// The running claim's figures, timelines and current wait.
#[derive(Debug, Default)]
pub struct Recorder {
    figures: Mutex<Vec<(String, f64)>>,
    budgets: Mutex<Vec<(String, f64)>>,
    timelines: Mutex<Vec<Timeline>>,
    waiting: Mutex<String>,
}

impl Recorder {
    /// Records a figure the current claim measured (e.g. `failover outage (ms)`);
    /// the claim's outcome carries it, and `stackproof bench` aggregates it.
    pub fn record(&self, name: &str, value: f64) {
        self.figures
            .lock()
            .expect("figures lock")
            .push((name.to_string(), value));
    }

    /// Records a figure that has a budget (see [`Figure`]).
    pub fn measured(&self, figure: Figure, value: f64) {
        self.record(figure.name(), value);
    }

    /// Declares that `figure` (recorded with [`Recorder::measured`]) must
    /// stay at most `at_most`. The runner judges it, not the kind: on the
    /// run, or, for a claim whose claims file says `percentile = P` and that
    /// is repeated (`check --repeat`), on the P-th percentile of its runs. A
    /// check that held with a budget and no such figure recorded is an
    /// ERROR: its budget was not measured.
    pub fn budget(&self, figure: Figure, at_most: f64) {
        self.budgets
            .lock()
            .expect("budgets lock")
            .push((figure.name().to_string(), at_most));
    }

    /// Takes the budgets declared since the last call.
    pub fn take_budgets(&self) -> Vec<(String, f64)> {
        std::mem::take(&mut *self.budgets.lock().expect("budgets lock"))
    }

    /// Records what a probe loop saw through a fault, for the reports.
    pub fn record_timeline(
        &self,
        name: &str,
        report: &crate::probe::ProbeReport,
        budget: Option<Duration>,
    ) {
        self.record_timeline_marked(name, report, budget, &[]);
    }

    /// As [`Recorder::record_timeline`], with what happened when, each at a
    /// time from the fault's start ("VIP moved" after 146 ms).
    pub fn record_timeline_marked(
        &self,
        name: &str,
        report: &crate::probe::ProbeReport,
        budget: Option<Duration>,
        marks: &[(Duration, &str)],
    ) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.timelines
            .lock()
            .expect("timelines lock")
            .push(Timeline {
                name: name.to_string(),
                samples: report
                    .samples
                    .iter()
                    .map(|s| (ms(s.at), ms(s.took), matches!(s.result, Ok(200..=299))))
                    .collect(),
                fault: (ms(report.fault.0), ms(report.fault.1)),
                budget_ms: budget.map(ms),
                marks: marks
                    .iter()
                    .map(|(d, what)| (ms(report.fault.0 + *d), what.to_string()))
                    .collect(),
            });
    }

    /// Says what the running claim waits for now, for a person watching
    /// (`check` shows it beside the claim while it runs).
    pub fn waiting_for(&self, what: &str) {
        *self.waiting.lock().expect("waiting lock") = what.to_string();
    }

    /// What the running claim last said it waits for (emptied by the claim runner).
    pub fn waiting(&self) -> String {
        self.waiting.lock().expect("waiting lock").clone()
    }

    /// Takes the timelines recorded since the last call.
    pub fn take_timelines(&self) -> Vec<Timeline> {
        std::mem::take(&mut *self.timelines.lock().expect("timelines lock"))
    }

    /// Takes the figures recorded since the last call.
    pub fn take_figures(&self) -> Vec<(String, f64)> {
        std::mem::take(&mut *self.figures.lock().expect("figures lock"))
    }
}

/// What a probe saw through a fault, for the reports' timelines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timeline {
    /// What it shows ("stop_host lb-1").
    pub name: String,
    /// Each request: (sent at ms, took ms, answered 2xx).
    pub samples: Vec<(f64, f64, bool)>,
    /// The fault's window, in ms from the probe's start.
    pub fault: (f64, f64),
    /// When the service had to be back by, in ms from the fault's start.
    pub budget_ms: Option<f64>,
    /// What happened and when, in ms from the probe's start ("VIP moved", "ejected", "alert fired").
    #[serde(default)]
    pub marks: Vec<(f64, String)>,
}
