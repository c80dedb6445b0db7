//! Claims: one sentence of a design, one check against the running stack.
//!
//! A check measures and returns its evidence (counts, addresses, ms) or a
//! [`Failure`] saying what was expected and what was seen, as a readable
//! diff. The runner adds the time it took and, on failure, the last log
//! lines of the stack's services. Suites and the CLI run the same claims.

// A Failure carries its evidence and logs by value: it is built once per
// failing claim, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fixtures::Fixtures;
use crate::stack::Stack;

/// How long one claim may take before it counts as failed (faults included).
pub const CLAIM_DEADLINE: Duration = Duration::from_secs(120);

/// What a check returns: evidence on success.
pub type CheckResult = std::result::Result<String, Failure>;

/// A check: measures one claim on a running stack.
pub type Check = for<'a> fn(&'a Stack) -> BoxFuture<'a, CheckResult>;

/// One claim of a design, as catalogued in CLAIMS.md.
#[derive(Clone, Copy)]
pub struct Claim {
    /// Its stable ID, e.g. `simple_web.dns.www_a_record`.
    pub id: &'static str,
    /// What the design text says.
    pub says: &'static str,
    /// How we prove it.
    pub check: Check,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("id", &self.id).finish()
    }
}

/// Why a claim did not hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// One line: what went wrong.
    pub summary: String,
    /// What the claim expected and what it saw, when there is a comparison.
    pub expected: Option<String>,
    /// What it saw.
    pub actual: Option<String>,
    /// What it had measured before it failed.
    pub evidence: String,
    /// Whether the check could not measure at all (the harness failed, not the claim).
    pub harness_error: bool,
    /// The last log lines of the services involved.
    pub logs: String,
}

impl Failure {
    /// A failure with a message and the evidence measured so far.
    pub fn new(summary: impl Into<String>, evidence: impl Into<String>) -> Self {
        Failure {
            summary: summary.into(),
            expected: None,
            actual: None,
            evidence: evidence.into(),
            harness_error: false,
            logs: String::new(),
        }
    }

    /// Renders the expected/actual pair as a line diff (pretty_assertions).
    pub fn diff(&self) -> Option<String> {
        let (e, a) = (self.expected.as_ref()?, self.actual.as_ref()?);
        Some(format!("{}", pretty_assertions::StrComparison::new(e, a)))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure {
            harness_error: true,
            ..Failure::new(e.chain(), "")
        }
    }
}

/// Fails unless `expected == actual`, showing both as a diff.
pub fn ensure_eq<T: std::fmt::Debug + PartialEq>(
    what: &str,
    expected: T,
    actual: T,
    evidence: &str,
) -> std::result::Result<(), Failure> {
    if expected == actual {
        return Ok(());
    }
    Err(Failure {
        expected: Some(format!("{expected:#?}")),
        actual: Some(format!("{actual:#?}")),
        ..Failure::new(
            format!("{what}: expected {expected:?}, saw {actual:?}"),
            evidence,
        )
    })
}

/// Fails with `summary` unless `cond`.
pub fn ensure(
    cond: bool,
    summary: impl Into<String>,
    evidence: &str,
) -> std::result::Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        Err(Failure::new(summary, evidence))
    }
}

/// How a claim came out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// The claim's ID.
    pub id: String,
    /// The design's sentence.
    pub says: String,
    /// Whether it held.
    pub passed: bool,
    /// What was measured.
    pub evidence: String,
    /// Why not, when it did not hold.
    pub failure: Option<Failure>,
    /// How long the check took, in ms.
    pub millis: u128,
    /// Figures it measured (name, value), e.g. `failover outage (ms)`.
    #[serde(default)]
    pub figures: Vec<(String, f64)>,
}

/// Runs one claim with a deadline; on failure, gathers the services' last log lines.
pub async fn run(stack: &Stack, claim: &Claim) -> Outcome {
    let started = Instant::now();
    stack.take_figures();
    let result = match tokio::time::timeout(CLAIM_DEADLINE, (claim.check)(stack)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            format!("the check did not finish within {CLAIM_DEADLINE:?}"),
            "",
        )),
    };
    let millis = started.elapsed().as_millis();
    let figures = stack.take_figures();
    match result {
        Ok(evidence) => Outcome {
            id: claim.id.into(),
            says: claim.says.into(),
            passed: true,
            evidence,
            failure: None,
            millis,
            figures,
        },
        Err(mut failure) => {
            failure.logs = all_logs(stack).await;
            Outcome {
                id: claim.id.into(),
                says: claim.says.into(),
                passed: false,
                evidence: failure.evidence.clone(),
                failure: Some(failure),
                millis,
                figures,
            }
        }
    }
}

async fn all_logs(stack: &Stack) -> String {
    let mut out = String::new();
    for h in &stack.spec.hosts {
        for s in &h.services {
            let _ = write!(out, "{}", stack.logs(&h.name, s).await);
        }
    }
    out
}

/// A broken variant of a design's fixtures, and the claim it must make fail.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// Its folder's name.
    pub name: String,
    /// The folder, laid out like `fixtures/` (only the files it replaces).
    pub dir: PathBuf,
    /// The claim it must fail.
    pub fails: String,
    /// What it breaks, in one line.
    pub why: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MutantFile {
    fails: String,
    why: String,
}

/// The mutants of `design`: `fixtures/mutants/<design>/<name>/mutant.toml` and its files.
pub fn mutants(design: &str) -> Result<Vec<Mutant>> {
    let root = Fixtures::builtin_dir().join("mutants").join(design);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(out);
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let file = dir.join("mutant.toml");
        let text = std::fs::read_to_string(&file).map_err(|source| Error::Fixture {
            path: file.clone(),
            source,
        })?;
        let m: MutantFile = toml::from_str(&text).map_err(|e| Error::InvalidFixture {
            path: file.clone(),
            detail: e.to_string(),
        })?;
        out.push(Mutant {
            name: entry.file_name().to_string_lossy().into_owned(),
            dir,
            fails: m.fails,
            why: m.why,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
