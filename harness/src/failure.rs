//! What a check returns: its evidence, or a [`Failure`] that says whose
//! doing it is (the design's: FAIL; our tooling's: ERROR; nothing to judge:
//! SKIP) with what was expected and what was seen. The check kinds and the
//! measuring helpers build these; the claim runner turns them into verdicts.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What a check returns: evidence on success.
pub type CheckResult = std::result::Result<String, Failure>;

/// Why a check ended without the claim holding: the design broke the
/// sentence, or our own tooling could not measure it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Cause {
    /// The design's files make the sentence false: FAIL.
    #[default]
    Design,
    /// We could not measure (a deadline, a query of ours, a fault we could
    /// not apply, a probe that sent nothing): ERROR.
    Tooling,
    /// What the claim would measure is not the run's to judge (a remedy
    /// that would replace the user's own file): SKIP, with the reason.
    NotApplicable,
    /// Everything held but a figure went past its budget ([`crate::Recorder::budget`]):
    /// FAIL; when repeated, a claim judged on a percentile weighs it with its other runs.
    OverBudget,
}

/// Why a claim did not hold, or could not be measured.
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
    /// The last log lines of the services involved.
    pub logs: String,
    /// Whose doing it is; the runner turns it into the [`crate::Verdict`].
    #[serde(skip)]
    pub cause: Cause,
    /// What the servers showed as the reason, for a FAIL: the same key on
    /// several FAILs is one cause (the checklist names it once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<Found>,
}

/// A cause of a FAIL, measured on the running servers after it (see the
/// diagnosis in the claim runner): a key, the words, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The same thing found for several claims has the same key.
    pub(crate) key: String,
    /// What was found, in the servers' own words.
    pub(crate) words: String,
    /// The host it is on, when one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    /// The server whose file decides it there (`iptables`, `mariadb`, `nginx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) service: Option<String>,
}

impl Found {
    /// The same cause found for several claims has the same key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What was found, in the servers' own words.
    pub fn words(&self) -> &str {
        &self.words
    }
}

impl Failure {
    /// The design broke the claim: a FAIL, with the evidence measured so far.
    pub fn new(summary: impl Into<String>, evidence: impl Into<String>) -> Self {
        Failure {
            summary: summary.into(),
            expected: None,
            actual: None,
            evidence: evidence.into(),
            logs: String::new(),
            cause: Cause::Design,
            found: Vec::new(),
        }
    }

    /// Our tooling could not measure: an ERROR, never a FAIL or a PASS.
    pub fn not_measured(summary: impl Into<String>, evidence: impl Into<String>) -> Self {
        Failure {
            cause: Cause::Tooling,
            ..Failure::new(summary, evidence)
        }
    }

    /// The claim says nothing about what is running, for the reason given: a SKIP.
    pub fn not_applicable(reason: impl Into<String>) -> Self {
        Failure {
            cause: Cause::NotApplicable,
            ..Failure::new(reason, "")
        }
    }

    /// Renders the expected/actual pair as a line diff (pretty_assertions).
    pub fn diff(&self) -> Option<String> {
        let (e, a) = (self.expected.as_ref()?, self.actual.as_ref()?);
        Some(format!("{}", pretty_assertions::StrComparison::new(e, a)))
    }
}

impl From<Error> for Failure {
    /// A server rejecting the design's own configuration is the design's
    /// doing (FAIL); every other harness error means we could not measure.
    fn from(e: Error) -> Self {
        match e {
            Error::ConfigRejected { .. } | Error::ServiceStart { .. } | Error::NotOnHost { .. } => {
                Failure::new(e.chain(), "")
            }
            _ => Failure::not_measured(e.chain(), ""),
        }
    }
}

/// Fails as not measured (ERROR) unless `cond`: for what our own probes must
/// have done before a verdict means anything (e.g. sent at least one request).
pub fn ensure_measured(
    cond: bool,
    summary: impl Into<String>,
    evidence: &str,
) -> std::result::Result<(), Failure> {
    if cond {
        Ok(())
    } else {
        Err(Failure::not_measured(summary, evidence))
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
