//! What changed between two runs of a design (a pull request's question):
//! claims whose verdict moved (PASS -> FAIL is a regression), claims new or
//! gone, and figures (a failover's outage...) that moved beyond a stated
//! relative threshold, in words, as Markdown for a PR comment, and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::merge::SavedReport;

/// A figure moved when it changed by more than this share of the base's
/// value (0.5: by half) ...
pub const DEFAULT_THRESHOLD: f64 = 0.5;
/// ... and by more than this much in its own unit: a figure of a few
/// milliseconds doubles from run to run without meaning anything.
const NOISE_FLOOR: f64 = 10.0;

/// One claim whose verdict is not the same on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moved {
    /// The claim's ID.
    pub id: String,
    /// Its verdict in the base run (`None`: the base has no such claim).
    pub before: Option<String>,
    /// Its verdict in the head run (`None`: the head has no such claim).
    pub after: Option<String>,
    /// Why it is what it is in the head run, when it did not hold.
    pub why: Option<String>,
}

impl Moved {
    /// It held and no longer does.
    pub fn regressed(&self) -> bool {
        self.before.as_deref() == Some("PASS")
            && matches!(self.after.as_deref(), Some("FAIL" | "ERROR"))
    }
}

/// One figure that moved beyond the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// The claim that measured it.
    pub id: String,
    /// The figure's name (`failover outage (ms)`).
    pub name: String,
    /// Its value in the base run.
    pub before: f64,
    /// Its value in the head run.
    pub after: f64,
}

/// Two runs of one design, compared.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// The design.
    pub design: String,
    /// The platforms of the base and head runs, when they differ (the
    /// upgrade question: `debian-12` then `debian-13`).
    pub platforms: Option<(String, String)>,
    /// The threshold figures were held to (a share of the base's value).
    pub threshold: f64,
    /// Claims whose verdict moved, appeared or went, in the head's order.
    pub moved: Vec<Moved>,
    /// Figures that moved beyond the threshold.
    pub figures: Vec<Figure>,
    /// Claims with the same verdict on both sides.
    pub same: usize,
}

/// Compares `head` with `base` (two reports of `check --json`).
pub fn diff(base: &SavedReport, head: &SavedReport, threshold: f64) -> Result<Diff> {
    if base.design != head.design {
        return Err(Error::InvalidFixture {
            path: head.file.clone(),
            detail: format!(
                "a report of `{}`, compared with one of `{}` ({}): compare two runs of one design",
                head.design,
                base.design,
                base.file.display()
            ),
        });
    }
    let label = |o: &crate::claim::Outcome| o.verdict.label().to_string();
    let before: BTreeMap<&str, &crate::claim::Outcome> =
        base.claims.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut moved = Vec::new();
    let mut figures = Vec::new();
    let mut same = 0;
    for o in &head.claims {
        let was = before.get(o.id.as_str());
        let now = label(o);
        match was {
            Some(b) if label(b) == now => same += 1,
            _ => moved.push(Moved {
                id: o.id.clone(),
                before: was.map(|b| label(b)),
                after: Some(now),
                why: o.verdict.failure().map(|f| f.summary.clone()),
            }),
        }
        let Some(b) = was else { continue };
        for (name, after) in &o.figures {
            let Some((_, before)) = b.figures.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let change = (after - before).abs();
            if change > NOISE_FLOOR && change > threshold * before.abs() {
                figures.push(Figure {
                    id: o.id.clone(),
                    name: name.clone(),
                    before: *before,
                    after: *after,
                });
            }
        }
    }
    for b in &base.claims {
        if !head.claims.iter().any(|o| o.id == b.id) {
            moved.push(Moved {
                id: b.id.clone(),
                before: Some(label(b)),
                after: None,
                why: None,
            });
        }
    }
    let platforms =
        (base.platform != head.platform).then(|| (base.platform.clone(), head.platform.clone()));
    Ok(Diff {
        design: head.design.clone(),
        platforms,
        threshold,
        moved,
        figures,
        same,
    })
}

impl Diff {
    /// A claim that held and no longer does: the gate's reason to fail.
    pub fn regressed(&self) -> bool {
        self.moved.iter().any(Moved::regressed)
    }

    /// 1 on a regression, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.regressed())
    }

    fn verdict_words(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("(none)")
    }

    /// The design, and the platforms when the two runs' differ.
    fn title(&self) -> String {
        match &self.platforms {
            Some((base, head)) => format!(
                "{} ({} -> {})",
                self.design,
                if base.is_empty() { "?" } else { base },
                if head.is_empty() { "?" } else { head }
            ),
            None => self.design.clone(),
        }
    }

    /// In words, one line each, for a terminal.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{}: {} claim(s) moved, {} figure(s) moved by more than {:.0} %, {} claim(s) the same\n",
            self.title(),
            self.moved.len(),
            self.figures.len(),
            self.threshold * 100.0,
            self.same
        );
        for m in &self.moved {
            let _ = writeln!(
                s,
                "  {:<10} {} {} -> {}{}",
                if m.regressed() { "REGRESSED" } else { "moved" },
                m.id,
                Self::verdict_words(&m.before),
                Self::verdict_words(&m.after),
                m.why
                    .as_deref()
                    .map(|w| format!(": {}", w.lines().next().unwrap_or("")))
                    .unwrap_or_default()
            );
        }
        for f in &self.figures {
            let _ = writeln!(
                s,
                "  {:<10} {} {}: {} -> {}",
                "figure", f.id, f.name, f.before, f.after
            );
        }
        s
    }

    /// As Markdown, for a pull request's comment or a CI step summary.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "### stackproof: what changed in `{}`\n\n{}\n\n",
            self.title(),
            if self.regressed() {
                "**A claim that held no longer does.**"
            } else {
                "No claim that held broke."
            }
        );
        if !self.moved.is_empty() {
            s.push_str("| claim | before | after | why |\n|---|---|---|---|\n");
            for m in &self.moved {
                let _ = writeln!(
                    s,
                    "| {}`{}` | {} | {} | {} |",
                    if m.regressed() { "🔴 " } else { "" },
                    m.id,
                    Self::verdict_words(&m.before),
                    Self::verdict_words(&m.after),
                    m.why
                        .as_deref()
                        .and_then(|w| w.lines().next())
                        .unwrap_or("")
                        .replace('|', "\\|")
                );
            }
            s.push('\n');
        }
        if !self.figures.is_empty() {
            let _ = writeln!(
                s,
                "Figures that moved by more than {:.0} %:\n\n| claim | figure | before | after |\n|---|---|---|---|",
                self.threshold * 100.0
            );
            for f in &self.figures {
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | {} |",
                    f.id, f.name, f.before, f.after
                );
            }
            s.push('\n');
        }
        let _ = writeln!(s, "{} claim(s) came out the same.", self.same);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::{Outcome, Verdict};
    use crate::failure::Failure;

    fn outcome(id: &str, verdict: Verdict, figures: &[(&str, f64)]) -> Outcome {
        Outcome {
            id: id.into(),
            says: String::new(),
            verdict,
            evidence: String::new(),
            millis: 0,
            figures: figures.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            timelines: Vec::new(),
            budgets: Vec::new(),
        }
    }

    fn report(claims: Vec<Outcome>) -> SavedReport {
        serde_json::from_value(serde_json::json!({
            "design": "scale_up", "run": "r", "up_ms": 1, "image_built": false,
            "image": "i", "claims": claims,
        }))
        .unwrap()
    }

    #[test]
    fn a_claim_that_broke_is_a_regression_and_a_slower_figure_is_said() {
        let base = report(vec![
            outcome(
                "scale_up.lb.failover",
                Verdict::Pass,
                &[("outage (ms)", 300.0)],
            ),
            outcome("scale_up.lb.single_master", Verdict::Pass, &[]),
            outcome(
                "scale_up.dns.www_to_vip",
                Verdict::Pass,
                &[("tiny (ms)", 3.0)],
            ),
            outcome("scale_up.gone", Verdict::Pass, &[]),
        ]);
        let head = report(vec![
            outcome(
                "scale_up.lb.failover",
                Verdict::Pass,
                &[("outage (ms)", 900.0)],
            ),
            outcome(
                "scale_up.lb.single_master",
                Verdict::Fail(Failure::new("two holders", "")),
                &[],
            ),
            outcome(
                "scale_up.dns.www_to_vip",
                Verdict::Pass,
                &[("tiny (ms)", 9.0)],
            ),
            outcome("scale_up.new", Verdict::Skip("later".into()), &[]),
        ]);
        let d = diff(&base, &head, DEFAULT_THRESHOLD).unwrap();
        assert!(d.regressed());
        assert_eq!(d.exit_code(), 1);
        assert_eq!(d.same, 2);
        let ids: Vec<&str> = d.moved.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            ["scale_up.lb.single_master", "scale_up.new", "scale_up.gone"]
        );
        // 300 -> 900 ms moved; 3 -> 9 ms is under the noise floor.
        assert_eq!(d.figures.len(), 1, "{:?}", d.figures);
        assert!(
            d.text()
                .contains("REGRESSED  scale_up.lb.single_master PASS -> FAIL: two holders")
        );
        assert!(
            d.markdown()
                .contains("| 🔴 `scale_up.lb.single_master` | PASS | FAIL | two holders |")
        );
        // PASS -> SKIP, new or gone claims are said, not regressions.
        let quiet = diff(&base, &base, DEFAULT_THRESHOLD).unwrap();
        assert!(!quiet.regressed() && quiet.moved.is_empty() && quiet.figures.is_empty());
    }

    #[test]
    fn two_designs_are_not_compared() {
        let a = report(vec![]);
        let mut b = report(vec![]);
        b.design = "simple_web".into();
        assert!(diff(&a, &b, DEFAULT_THRESHOLD).is_err());
    }
}
