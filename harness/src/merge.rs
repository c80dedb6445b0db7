//! Many runs' reports as one: a CI matrix checks each design on its own
//! machine (`check --json`), and one last job merges their JSON reports
//! into a single HTML page (every design's topology coloured by its
//! verdicts), one JUnit file (a `<testsuites>` of every run) and one
//! Markdown summary. The combined exit code is the worst of the runs'.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::claim::{Outcome, Verdict};
use crate::design::Design;
use crate::error::{Error, Result};
use crate::report::RunReport;

/// A run's report as `check --json` wrote it.
#[derive(Debug, Deserialize)]
pub struct SavedReport {
    /// The design, as the run named it (a built-in name or a folder).
    pub design: String,
    /// The platform its servers ran on (none in reports of older versions).
    #[serde(default)]
    pub platform: String,
    /// The run id.
    pub run: String,
    /// ms from nothing to all services ready.
    pub up_ms: u128,
    /// Whether an image was built for it.
    pub image_built: bool,
    /// The image used.
    pub image: String,
    /// Every claim's outcome.
    pub claims: Vec<Outcome>,
    /// The servers' versions.
    #[serde(default)]
    pub versions: Vec<(String, String)>,
    /// The file it was read from.
    #[serde(skip)]
    pub file: PathBuf,
}

impl SavedReport {
    /// The report as the writers take it.
    pub fn view(&self) -> RunReport<'_> {
        RunReport {
            design: &self.design,
            platform: &self.platform,
            run: &self.run,
            up_ms: self.up_ms,
            image_built: self.image_built,
            image: &self.image,
            claims: &self.claims,
            versions: &self.versions,
        }
    }

    /// Seconds its claims took, one after another.
    fn checked_s(&self) -> f64 {
        self.claims.iter().map(|o| o.millis as f64 / 1000.0).sum()
    }
}

/// Reads each JSON report, with the file named in any error.
pub fn read(paths: &[PathBuf]) -> Result<Vec<SavedReport>> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|source| Error::Fixture {
                path: p.clone(),
                source,
            })?;
            let mut r: SavedReport =
                serde_json::from_str(&text).map_err(|e| Error::InvalidFixture {
                    path: p.clone(),
                    detail: format!("not a report written by `stackproof check --json` ({e})"),
                })?;
            r.file = p.clone();
            Ok(r)
        })
        .collect()
}

/// Each report with its design, loaded by the name the run gave it.
fn designs(reports: &[SavedReport]) -> Result<Vec<Design>> {
    reports
        .iter()
        .map(|r| {
            Design::load(&r.design).map_err(|e| Error::InvalidFixture {
                path: r.file.clone(),
                detail: format!(
                    "its design `{}` cannot be loaded here (run merge where that design's folder is): {}",
                    r.design,
                    e.chain()
                ),
            })
        })
        .collect()
}

/// The combined exit code: 1 when a claim broke anywhere, else 2 when one
/// could not be measured, else 0.
pub fn exit_code(reports: &[SavedReport]) -> u8 {
    reports
        .iter()
        .map(|r| crate::claim::exit_code(&r.claims))
        .fold(0, |worst, c| match (worst, c) {
            (1, _) | (_, 1) => 1,
            (2, _) | (_, 2) => 2,
            _ => 0,
        })
}

/// (held, broken, not measured, skipped) of one run.
pub fn counts(claims: &[Outcome]) -> (usize, usize, usize, usize) {
    let count = |f: fn(&Verdict) -> bool| claims.iter().filter(|o| f(&o.verdict)).count();
    (
        count(Verdict::passed),
        count(Verdict::failed),
        count(|v| matches!(v, Verdict::Error(_))),
        count(Verdict::skipped),
    )
}

/// One page: a table of the runs, then each run's section.
pub fn html(reports: &[SavedReport]) -> Result<String> {
    let designs = designs(reports)?;
    let mut body = String::from(
        "<h1>stackproof: every run</h1><table><tr><th>design</th><th>held</th><th>broken</th><th>not measured</th><th>skipped</th><th>checked in</th></tr>",
    );
    for r in reports {
        let (h, b, e, s) = counts(&r.claims);
        body.push_str(&format!(
            "<tr><td><a href=\"#{0}\"><code>{0}</code></a></td><td><span class=\"PASS\">{h}</span></td><td><span class=\"FAIL\">{b}</span></td><td><span class=\"ERROR\">{e}</span></td><td><span class=\"SKIP\">{s}</span></td><td>{1:.1} s</td></tr>",
            crate::html::esc(&r.design),
            r.checked_s()
        ));
    }
    body.push_str("</table>");
    for (r, d) in reports.iter().zip(&designs) {
        body.push_str(&crate::html::section(d, &r.view(), r.checked_s(), "h2"));
    }
    Ok(crate::html::wrap("stackproof: every run", &body))
}

/// One JUnit file: a `<testsuites>` holding every run's `<testsuite>`.
pub fn junit(reports: &[SavedReport]) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for r in reports {
        x.push_str(&crate::report::junit_suite(&r.view()));
    }
    x.push_str("</testsuites>\n");
    x
}

/// One Markdown summary: every run's, one after another.
pub fn markdown(reports: &[SavedReport]) -> Result<String> {
    let designs = designs(reports)?;
    let mut md = String::from(
        "# stackproof: every run\n\n| design | held | broken | not measured | skipped |\n|---|---|---|---|---|\n",
    );
    for r in reports {
        let (h, b, e, s) = counts(&r.claims);
        md.push_str(&format!("| `{}` | {h} | {b} | {e} | {s} |\n", r.design));
    }
    for (r, d) in reports.iter().zip(&designs) {
        md.push('\n');
        md.push_str(&crate::report::markdown(d, &r.view()));
    }
    Ok(md)
}

/// Writes `text` to `path`.
pub fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(Error::io(format!("write `{}`", path.display())))
}
