//! Claims: one sentence of a design, one check against the running stack.
//!
//! A check measures and returns its evidence (counts, addresses, ms) or a
//! [`Failure`] saying what was expected and what was seen, as a readable
//! diff. The runner adds the time it took and, on failure, the last log
//! lines of the stack's services. Suites and the CLI run the same claims.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::recorder::Recorder;
use crate::stack::Stack;

/// How long one claim may take before it counts as not measured (faults included).
pub const CLAIM_DEADLINE: Duration = Duration::from_secs(120);

/// One claim of a design: an entry of its `claims.toml`, bound to its check kind.
#[derive(Clone)]
pub struct Claim {
    /// Its stable ID, e.g. `simple_web.dns.www_a_record`.
    pub(crate) id: String,
    /// What the design text says.
    pub(crate) says: String,
    /// The assertion, in one sentence: how the check proves it.
    pub(crate) proves: String,
    /// Its check kind's name (`dns.a_record`).
    pub(crate) kind: &'static str,
    /// Its parameters, checked against the kind and the design.
    pub(crate) params: std::sync::Arc<crate::kinds::Params>,
    /// The kind's check.
    pub(crate) check: crate::kinds::KindCheck,
    /// Why the design's owner skips it: reported as SKIP with this reason, never run.
    pub(crate) skip: Option<String>,
    /// The hosts it concerns (its host parameters), for reports that draw the topology.
    pub(crate) hosts: Vec<String>,
    /// A documented remedy it is measured on, started beside the design.
    pub(crate) variant: Option<Variant>,
    /// What to look at when it fails, from the claims file (`look_at`):
    /// said after the failure's own words, never instead of them.
    pub(crate) look_at: Option<String>,
    /// Its budgets judged on this percentile of its runs when repeated
    /// (`percentile = 95` in the claims file); none: on every run.
    pub(crate) percentile: Option<u8>,
    /// Its kind's facts (timed, servers read): [`crate::kinds::Facts::PLAIN`]
    /// for a Rust claim.
    pub(crate) facts: crate::kinds::Facts,
}

impl Claim {
    /// Its stable ID, e.g. `simple_web.dns.www_a_record`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the design text says.
    pub fn says(&self) -> &str {
        &self.says
    }

    /// The assertion, in one sentence: how the check proves it.
    pub fn proves(&self) -> &str {
        &self.proves
    }

    /// Its check kind's name (`dns.a_record`; `rust` for a Rust claim).
    pub fn kind(&self) -> &str {
        self.kind
    }

    /// Why the design's owner skips it, when it is skipped.
    pub fn skip(&self) -> Option<&str> {
        self.skip.as_deref()
    }

    /// Whether its verdict is a time budget (its kind is timed), so a
    /// suite runs it while nothing else loads the machine.
    pub fn is_timed(&self) -> bool {
        self.facts.is_timed()
    }
}

/// A claim's variant: the design with `variants/<name>/` laid over it, on
/// which the claim's own check runs and `still_hold` must all hold.
#[derive(Clone, Debug)]
pub struct Variant {
    /// The folder under `variants/`.
    pub name: String,
    /// Claims of the design that must still hold with the variant.
    pub still_hold: Vec<Claim>,
}

impl Claim {
    /// A claim checked by Rust code of your own, with no parameters: for a
    /// suite's own checks on a running stack (the runner runs it like any other).
    pub fn rust(
        id: impl Into<String>,
        says: impl Into<String>,
        proves: impl Into<String>,
        check: crate::kinds::KindCheck,
    ) -> Claim {
        Claim {
            id: id.into(),
            says: says.into(),
            proves: proves.into(),
            kind: "rust",
            params: Default::default(),
            check,
            skip: None,
            look_at: None,
            percentile: None,
            hosts: Vec::new(),
            variant: None,
            facts: crate::kinds::Facts::PLAIN,
        }
    }
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("id", &self.id).finish()
    }
}

/// A claim's verdict: held, broken, not measured, skipped, or (measured
/// more than once) flaky, each but the first with why. Reports print PASS,
/// FAIL, ERROR, SKIP and FLAKY.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "why")]
pub enum Verdict {
    /// The sentence held: PASS.
    #[serde(rename = "PASS")]
    Pass,
    /// The design does not do what the sentence says: FAIL.
    #[serde(rename = "FAIL")]
    Fail(Failure),
    /// Our tooling could not measure: ERROR.
    #[serde(rename = "ERROR")]
    Error(Failure),
    /// The design's owner skips it, for the reason given: SKIP. Never run.
    #[serde(rename = "SKIP")]
    Skip(String),
    /// Measured several times (`check --repeat`), it both held and did not: FLAKY.
    #[serde(rename = "FLAKY")]
    Flaky(Flaky),
}

/// A claim that held in some runs and not in others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flaky {
    /// How many runs it held in.
    pub held: usize,
    /// How many runs there were.
    pub runs: usize,
    /// The first run it did not hold in, and why.
    pub first: Failure,
}

impl Verdict {
    /// `PASS`, `FAIL` or `ERROR`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail(_) => "FAIL",
            Verdict::Error(_) => "ERROR",
            Verdict::Skip(_) => "SKIP",
            Verdict::Flaky(_) => "FLAKY",
        }
    }

    /// Why it did not hold, unless it held.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Verdict::Pass | Verdict::Skip(_) => None,
            Verdict::Fail(f) | Verdict::Error(f) => Some(f),
            Verdict::Flaky(flaky) => Some(&flaky.first),
        }
    }

    /// Whether the claim held (PASS).
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// Whether the claim was skipped on purpose.
    pub fn skipped(&self) -> bool {
        matches!(self, Verdict::Skip(_))
    }

    /// Whether the design broke the claim (always, or in some runs: FLAKY).
    pub fn failed(&self) -> bool {
        matches!(self, Verdict::Fail(_) | Verdict::Flaky(_))
    }

    /// Whether it both held and broke over repeated runs.
    pub fn flaky(&self) -> bool {
        matches!(self, Verdict::Flaky(_))
    }

    fn from_check(result: CheckResult) -> (String, Verdict) {
        match result {
            Ok(evidence) => (evidence, Verdict::Pass),
            Err(f) => (
                f.evidence.clone(),
                match f.cause {
                    Cause::Design | Cause::OverBudget => Verdict::Fail(f),
                    Cause::Tooling => Verdict::Error(f),
                    Cause::NotApplicable => Verdict::Skip(f.summary),
                },
            ),
        }
    }
}

/// How a claim came out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// The claim's ID.
    pub id: String,
    /// The design's sentence.
    pub says: String,
    /// PASS, FAIL or ERROR, with why.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// What was measured.
    pub evidence: String,
    /// How long the check took, in ms.
    pub millis: u128,
    /// Figures it measured (name, value), e.g. `failover outage (ms)`.
    #[serde(default)]
    pub figures: Vec<(String, f64)>,
    /// What its probes saw through its faults.
    #[serde(default)]
    pub timelines: Vec<Timeline>,
    /// The budgets its figures were judged on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Budget>,
}

/// A figure's budget: declared by the kind ([`Recorder::budget`]), judged
/// by the runner on each run, or on a percentile of the runs of a repeated
/// claim whose claims file says `percentile = P`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The figure, as recorded (`failover outage (ms)`).
    pub figure: String,
    /// The most it may be.
    pub at_most: f64,
    /// Judged on this percentile of a repeated claim's runs; none: on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<u8>,
}

impl Budget {
    /// The first of `budgets` that a value of `figures` goes past, with the value.
    pub fn first_exceeded<'a>(
        budgets: &'a [Budget],
        figures: &[(String, f64)],
    ) -> Option<(&'a Budget, f64)> {
        budgets.iter().find_map(|b| {
            figures
                .iter()
                .find(|(name, v)| *name == b.figure && *v > b.at_most)
                .map(|(_, v)| (b, *v))
        })
    }
}

impl Outcome {
    /// An outcome of claim `id` with `verdict` and nothing measured: for
    /// tests of what reads outcomes (tables, reports).
    #[cfg(test)]
    pub(crate) fn bare(id: &str, verdict: Verdict) -> Outcome {
        Outcome {
            id: id.into(),
            says: String::new(),
            verdict,
            evidence: String::new(),
            millis: 0,
            figures: Vec::new(),
            timelines: Vec::new(),
            budgets: Vec::new(),
        }
    }

    /// ERROR for `claim`, which could not be run: `why`.
    pub fn not_run(claim: &Claim, why: impl Into<String>) -> Outcome {
        Outcome {
            id: claim.id.clone(),
            says: claim.says.clone(),
            verdict: Verdict::Error(Failure::not_measured(why, "")),
            evidence: String::new(),
            millis: 0,
            figures: Vec::new(),
            timelines: Vec::new(),
            budgets: Vec::new(),
        }
    }
}

/// The process exit code for a set of outcomes: 0 when every claim that
/// ran held, 1 when one broke, 2 when none broke but some could not be
/// measured (or nothing ran). Skipped claims count for nothing.
pub fn exit_code(outcomes: &[Outcome]) -> u8 {
    let ran: Vec<&Outcome> = outcomes.iter().filter(|o| !o.verdict.skipped()).collect();
    if ran.iter().any(|o| o.verdict.failed()) {
        1
    } else if !ran.is_empty() && ran.iter().all(|o| o.verdict.passed()) {
        0
    } else {
        2
    }
}

/// Runs one claim with a deadline; on failure, gathers the services' last
/// log lines. Whatever way the check ends (an error, its deadline, a
/// panic), every fault it applied and did not undo is undone here; when
/// that fails the stack is marked tainted (see [`Stack::tainted`]).
pub async fn run(stack: &Stack, claim: &Claim) -> Outcome {
    run_recorded(stack, claim, &Recorder::default()).await
}

/// As [`run`], recording on `rec`, which a caller can watch while the
/// claim runs (`check` shows what it waits for).
pub async fn run_recorded(stack: &Stack, claim: &Claim, rec: &Recorder) -> Outcome {
    use futures::FutureExt as _;
    if let Some(reason) = &claim.skip {
        return Outcome {
            id: claim.id.clone(),
            says: claim.says.clone(),
            verdict: Verdict::Skip(reason.clone()),
            evidence: String::new(),
            millis: 0,
            figures: Vec::new(),
            timelines: Vec::new(),
            budgets: Vec::new(),
        };
    }
    let started = Instant::now();
    rec.take_figures();
    rec.take_timelines();
    rec.waiting_for("");
    let check =
        std::panic::AssertUnwindSafe((claim.check)(stack, &claim.params, rec)).catch_unwind();
    let result = match tokio::time::timeout(CLAIM_DEADLINE, check).await {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => Err(Failure::not_measured(
            format!("the check panicked: {}", panic_message(&panic)),
            "",
        )),
        Err(_) => Err(Failure::not_measured(
            format!("the check did not finish within {CLAIM_DEADLINE:?}"),
            "",
        )),
    };
    tracing::debug!(claim = %claim.id, ms = started.elapsed().as_millis(), "check ended");
    let restored = stack.restore_faults().await;
    let millis = started.elapsed().as_millis();
    let figures = rec.take_figures();
    let timelines = rec.take_timelines();
    let budgets: Vec<Budget> = rec
        .take_budgets()
        .into_iter()
        .map(|(figure, at_most)| Budget {
            figure,
            at_most,
            percentile: claim.percentile,
        })
        .collect();
    // A check that held is judged on its budgets here, so a repeated claim
    // can tell a run over budget from one that broke (Cause::OverBudget).
    let unmeasured = budgets
        .iter()
        .find(|b| !figures.iter().any(|(f, _)| *f == b.figure));
    let result = match result {
        // A budget whose figure was never recorded was not judged: say so.
        Ok(evidence) if let Some(b) = unmeasured => Err(Failure::not_measured(
            format!(
                "the check declared a budget on `{}` and recorded no such figure, so the budget was not measured",
                b.figure
            ),
            evidence,
        )),
        Ok(evidence) => match Budget::first_exceeded(&budgets, &figures) {
            Some((b, value)) => Err(Failure {
                cause: Cause::OverBudget,
                ..Failure::new(
                    format!(
                        "{} was {value:.0}, past its budget of {:.0}",
                        b.figure, b.at_most
                    ),
                    evidence,
                )
            }),
            None => Ok(evidence),
        },
        Err(f) => Err(f),
    };
    let (evidence, mut verdict) = Verdict::from_check(result);
    let mut left_changed = restored.err().map(|e| {
        format!(
            "after the claim, undoing its faults failed, so the stack is discarded: {}",
            e.chain()
        )
    });
    // Our own promise, checked after every claim: the run's DNS zone is the
    // design's, or the claims after it would measure another design.
    if let Some(changed) = stack.dns.put_back(&stack.zone_at_rest()).await {
        stack.taint();
        left_changed.get_or_insert(format!(
            "after the claim, the run's DNS zone was not the design's ({changed}): put back, and the stack is discarded"
        ));
    }
    if let Some(note) = left_changed {
        // The claim's own verdict stands; the note says why the next claim gets a fresh stack.
        match &mut verdict {
            Verdict::Fail(f) | Verdict::Error(f) => {
                f.summary.push('\n');
                f.summary.push_str(&note);
            }
            Verdict::Pass | Verdict::Skip(_) | Verdict::Flaky(_) => {
                verdict = Verdict::Error(Failure::not_measured(note, evidence.clone()))
            }
        }
    }
    if let Verdict::Fail(f) | Verdict::Error(f) = &mut verdict {
        f.logs = claims_logs(stack, claim).await;
    }
    // What the servers show as the cause (a server that never settled, a
    // scrape a firewall drops, PHP source sent as text...): said with the
    // FAIL, in the servers' own words, and kept as keys the checklist groups.
    if let Verdict::Fail(f) = &mut verdict {
        f.found = crate::diagnose::causes(stack, claim.kind).await;
        for c in &f.found {
            f.summary.push_str("\ncause: ");
            f.summary.push_str(&c.words);
        }
    }
    // The claims file's pointer for a reader of a FAIL (a student): what
    // to look at, after the failure's own words.
    if let (Verdict::Fail(f), Some(look_at)) = (&mut verdict, &claim.look_at) {
        f.summary.push_str("\nlook at: ");
        f.summary.push_str(look_at);
    }
    Outcome {
        id: claim.id.clone(),
        says: claim.says.clone(),
        verdict,
        evidence,
        millis,
        figures,
        timelines,
        budgets,
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// The last log lines of the hosts `claim` names (a backend, an LB), or of
/// every host when it names none: what a reader of its failure needs.
async fn claims_logs(stack: &Stack, claim: &Claim) -> String {
    let named = &claim.hosts;
    let mut out = String::new();
    for h in stack
        .spec
        .hosts
        .iter()
        .filter(|h| named.is_empty() || named.contains(&h.name))
    {
        for s in &h.services {
            let _ = write!(out, "{}", stack.logs(&h.name, s).await);
        }
    }
    out
}

pub use crate::failure::{Cause, CheckResult, Failure};
pub use crate::mutant::Mutant;
pub use crate::recorder::Timeline;
