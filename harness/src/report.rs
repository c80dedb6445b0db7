//! Reports: the checklist a person reads, and JSON and JUnit XML for CI.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;

use serde::Serialize;

use crate::claim::{Outcome, Verdict};

/// The exit status a run of these outcomes ends with (1 when any claim broke).
pub use crate::claim::exit_code;
use crate::error::{Error, Result};

/// One checklist entry: `PASS  id  (ms)  the design's sentence`, the
/// evidence measured on the next line, then on failure the why, the diff
/// and the services' last log lines, indented.
pub fn checklist_line(o: &Outcome) -> String {
    let mut s = format!(
        "{:<5} {:<48} {:>6} ms  {}\n      measured: {}",
        o.verdict.label(),
        o.id,
        o.millis,
        o.says,
        if o.evidence.is_empty() {
            "-"
        } else {
            &o.evidence
        }
    );
    if let Verdict::Skip(reason) = &o.verdict {
        let _ = write!(s, "\n      skipped: {reason}");
    }
    if let Some(f) = o.verdict.failure() {
        let _ = write!(
            s,
            "\n      why: {}",
            f.summary.replace('\n', "\n           ")
        );
        if let Some(diff) = f.diff() {
            let _ = write!(
                s,
                "\n      expected (left) vs measured (right):\n{}",
                indent(&diff, 8)
            );
        }
        if !f.logs.is_empty() {
            let _ = write!(s, "\n      last log lines:\n{}", indent(&f.logs, 8));
        }
    }
    // Colours (the diff's) only for a person at a terminal, never in CI logs.
    if std::io::stdout().is_terminal() {
        s
    } else {
        strip_ansi(&s)
    }
}

/// The checklist line without the services' logs: for an expected failure
/// (a mutant doing its job), where the logs are noise.
pub fn checklist_line_short(o: &Outcome) -> String {
    let mut o = o.clone();
    if let Verdict::Fail(f) | Verdict::Error(f) = &mut o.verdict {
        f.logs.clear();
    }
    checklist_line(&o)
}

/// The design's parts, in the order a checklist shows them.
pub const PARTS: &[&str] = &[
    "DNS",
    "load balancer",
    "web server",
    "application server",
    "database",
    "where components run",
    "HTTPS",
    "firewalls",
    "monitoring",
    "documented issues",
    "remedies",
    "other",
];

/// The part of the design a claim speaks for, from the middle of its ID
/// (`scale_up.lb.failover` → "load balancer"), for the checklist's headings.
pub fn part(id: &str) -> &'static str {
    match id.split('.').nth(1).unwrap_or("") {
        "dns" => "DNS",
        "lb" => "load balancer",
        "web" => "web server",
        "app" => "application server",
        "db" => "database",
        "host" | "tiers" => "where components run",
        "https" => "HTTPS",
        "firewall" => "firewalls",
        "monitoring" => "monitoring",
        "issue" => "documented issues",
        "remedy" => "remedies",
        _ => "other",
    }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The machine-readable report of one design's run (`merge` reads it back).
#[derive(Debug, Serialize)]
pub struct RunReport<'a> {
    /// The design.
    pub design: &'a str,
    /// The platform its servers ran on (`debian-13`).
    pub platform: &'a str,
    /// The run id (labels of its containers).
    pub run: &'a str,
    /// ms from nothing to all services ready.
    pub up_ms: u128,
    /// Whether an image was built.
    pub image_built: bool,
    /// The image used.
    pub image: &'a str,
    /// Every claim's outcome.
    pub claims: &'a [Outcome],
    /// The servers' versions, as they report them (service, version).
    pub versions: &'a [(String, String)],
}

/// Writes the report as JSON.
pub fn write_json(path: &Path, report: &RunReport<'_>) -> Result<()> {
    let text = serde_json::to_string_pretty(report).expect("plain data serialises");
    std::fs::write(path, text).map_err(Error::io(format!("write `{}`", path.display())))
}

/// Writes the report as JUnit XML (one testcase per claim), which CI systems display.
pub fn write_junit(path: &Path, report: &RunReport<'_>) -> Result<()> {
    let x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        junit_suite(report)
    );
    std::fs::write(path, x).map_err(Error::io(format!("write `{}`", path.display())))
}

/// One run as a JUnit `<testsuite>`.
pub fn junit_suite(report: &RunReport<'_>) -> String {
    let count = |f: fn(&Verdict) -> bool| report.claims.iter().filter(|o| f(&o.verdict)).count();
    let failures = count(|v| matches!(v, Verdict::Fail(_)));
    let errors = count(|v| matches!(v, Verdict::Error(_)));
    let skipped = count(Verdict::skipped);
    let total_s: f64 = report.claims.iter().map(|o| o.millis as f64 / 1000.0).sum();
    let mut x = String::new();
    let _ = writeln!(
        x,
        "<testsuite name=\"stackproof.{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{total_s:.3}\">",
        xml(report.design),
        report.claims.len()
    );
    if !report.platform.is_empty() {
        let _ = writeln!(
            x,
            "  <properties><property name=\"platform\" value=\"{}\"/></properties>",
            xml(report.platform)
        );
    }
    for o in report.claims {
        let _ = write!(
            x,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            xml(report.design),
            xml(&o.id),
            o.millis as f64 / 1000.0
        );
        // JUnit wants the failure or error before system-out.
        let (tag, f) = match &o.verdict {
            Verdict::Pass => ("", None),
            Verdict::Skip(why) => {
                let _ = write!(x, "<skipped message=\"{}\"/>", xml(why));
                ("", None)
            }
            Verdict::Fail(f) => ("failure", Some(f)),
            Verdict::Error(f) => ("error", Some(f)),
            // As Maven Surefire writes a test that failed and passed on rerun.
            Verdict::Flaky(flaky) => ("flakyFailure", Some(&flaky.first)),
        };
        if let Some(f) = f {
            let body = format!(
                "{}\n{}\n{}",
                f.summary,
                f.diff().unwrap_or_default(),
                f.logs
            );
            let _ = write!(
                x,
                "<{tag} message=\"{}\">{}</{tag}>",
                xml(&f.summary),
                xml(&strip_ansi(&body))
            );
        }
        let _ = write!(
            x,
            "<system-out>{}</system-out>",
            xml(&format!("{}\n{}", o.says, o.evidence))
        );
        x.push_str("</testcase>\n");
    }
    x.push_str("</testsuite>\n");
    x
}

fn xml(s: &str) -> String {
    strip_ansi(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Removes terminal colour codes (the diff has them) for files.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A summary for CI pages (GitHub's step summary): the verdicts, the
/// topology coloured by them as a Mermaid diagram, a table of claims with
/// their key figure, and every failure expanded.
pub fn markdown(design: &crate::design::Design, report: &RunReport<'_>) -> String {
    let count = |f: fn(&Verdict) -> bool| report.claims.iter().filter(|o| f(&o.verdict)).count();
    let (held, broken, errors, skipped) = (
        count(Verdict::passed),
        count(Verdict::failed),
        count(|v| matches!(v, Verdict::Error(_))),
        count(Verdict::skipped),
    );
    let mut md = format!(
        "## stackproof check {}: {held} held, {broken} broken, {errors} not measured{}\n\n{}\n\n",
        report.design,
        if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        },
        design.spec.summary
    );
    let health = crate::graph::health(design, report.claims);
    let _ = write!(
        md,
        "```mermaid\n{}```\n\nHosts are green when every claim concerning them held, red when one failed, amber when one could not be measured.\n\n",
        crate::graph::mermaid(design, &health)
    );
    md.push_str("| verdict | claim | the design says | measured |\n|---|---|---|---|\n");
    for o in report.claims {
        let mark = match o.verdict {
            Verdict::Pass => "✅ PASS",
            Verdict::Fail(_) => "❌ FAIL",
            Verdict::Error(_) => "⚠️ ERROR",
            Verdict::Skip(_) => "⏭️ SKIP",
            Verdict::Flaky(_) => "🔀 FLAKY",
        };
        let figure = o
            .figures
            .first()
            .map(|(n, v)| format!("{n}: {v:.0}"))
            .unwrap_or_else(|| format!("{} ms", o.millis));
        let _ = writeln!(
            md,
            "| {mark} | `{}` | {} | {} |",
            o.id,
            o.says.replace('|', "\\|"),
            figure
        );
    }
    for o in report.claims {
        let Some(f) = o.verdict.failure() else {
            if let Verdict::Skip(why) = &o.verdict {
                let _ = write!(md, "\n**SKIP `{}`**: {why}\n", o.id);
            }
            continue;
        };
        let logs: String = f.logs.lines().take(40).collect::<Vec<_>>().join("\n");
        let _ = write!(
            md,
            "\n<details><summary><b>{} <code>{}</code></b>: {}</summary>\n\n**measured:** {}\n\n```\n{}{}\n```\n</details>\n",
            o.verdict.label(),
            o.id,
            xml(f.summary.lines().next().unwrap_or("")),
            xml(&o.evidence),
            strip_ansi(&f.diff().unwrap_or_default()),
            if logs.is_empty() {
                String::new()
            } else {
                format!("\nlast log lines:\n{}", strip_ansi(&logs))
            }
        );
    }
    md
}

/// Writes [`markdown`] to `path`.
pub fn write_markdown(
    path: &Path,
    design: &crate::design::Design,
    report: &RunReport<'_>,
) -> Result<()> {
    std::fs::write(path, markdown(design, report))
        .map_err(Error::io(format!("write `{}`", path.display())))
}

/// The causes found behind two FAILs or more, each once with the claims
/// it explains, in the order first met: one thing the user wrote that
/// broke several claims.
pub fn shared_causes(outcomes: &[Outcome]) -> Vec<(crate::failure::Found, Vec<String>)> {
    let mut causes: Vec<(crate::failure::Found, Vec<String>)> = Vec::new();
    for o in outcomes {
        let Verdict::Fail(f) = &o.verdict else {
            continue;
        };
        for found in &f.found {
            match causes.iter_mut().find(|(c, _)| c.key == found.key) {
                Some((_, ids)) => ids.push(o.id.clone()),
                None => causes.push((found.clone(), vec![o.id.clone()])),
            }
        }
    }
    causes.retain(|(_, ids)| ids.len() > 1);
    causes
}

/// The `pct` percentile (1 to 100) of `sorted` (ascending), by nearest
/// rank: the smallest value with at least `pct` % of the values at or
/// below it. The one rule for every percentile stackproof prints or judges
/// (`bench`'s p50/p95, a repeated claim's `percentile = 95`).
pub fn percentile(sorted: &[f64], pct: f64) -> Option<f64> {
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_behind_several_fails_is_named_once_with_each_claim() {
        use crate::claim::{Outcome, Verdict};
        use crate::failure::{Failure, Found};
        let found = |key: &str| Found {
            key: key.into(),
            words: format!("{key}, in words"),
            host: Some("lb-1".into()),
            service: Some("iptables".into()),
        };
        let outcome = Outcome::bare;
        let fail = |keys: &[&str]| {
            Verdict::Fail(Failure {
                found: keys.iter().map(|k| found(k)).collect(),
                ..Failure::new("broke", "")
            })
        };
        let outcomes = [
            outcome("a", fail(&["dropped lb-1"])),
            outcome("b", Verdict::Pass),
            outcome("c", fail(&["dropped lb-1", "php source"])),
            outcome("d", fail(&["php source-alone"])),
            // An ERROR's causes are not the design's: never grouped.
            outcome(
                "e",
                Verdict::Error(Failure {
                    found: vec![found("dropped lb-1")],
                    ..Failure::not_measured("could not", "")
                }),
            ),
        ];
        let causes = super::shared_causes(&outcomes);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(causes[0].0.key, "dropped lb-1");
        assert_eq!(causes[0].1, ["a", "c"]);
    }

    #[test]
    fn a_percentile_is_the_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(super::percentile(&v, 50.0), Some(10.0));
        assert_eq!(super::percentile(&v, 95.0), Some(19.0));
        assert_eq!(super::percentile(&v, 100.0), Some(20.0));
        assert_eq!(super::percentile(&v, 1.0), Some(1.0));
        assert_eq!(super::percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(super::percentile(&[], 95.0), None);
    }

    use super::*;
    use crate::failure::Failure;

    #[test]
    fn junit_escapes_and_counts_failures() {
        let claims = vec![
            Outcome {
                id: "a.b".into(),
                says: "".into(),
                verdict: Verdict::Pass,
                evidence: "1 < 2".into(),
                millis: 5,
                figures: vec![],
                timelines: Vec::new(),
                budgets: Vec::new(),
            },
            Outcome {
                id: "a.c".into(),
                says: "".into(),
                verdict: Verdict::Fail(Failure::new("saw \"x\" & y", "")),
                evidence: "".into(),
                millis: 7,
                figures: vec![],
                timelines: Vec::new(),
                budgets: Vec::new(),
            },
            Outcome {
                id: "a.d".into(),
                says: "".into(),
                verdict: Verdict::Error(Failure::not_measured("no samples", "")),
                evidence: "".into(),
                millis: 7,
                figures: vec![],
                timelines: Vec::new(),
                budgets: Vec::new(),
            },
        ];
        let path = std::env::temp_dir().join(format!("sp-junit-{}.xml", std::process::id()));
        let report = RunReport {
            design: "d",
            platform: "debian-13",
            run: "r",
            up_ms: 1,
            image_built: false,
            image: "i",
            claims: &claims,
            versions: &[],
        };
        write_junit(&path, &report).unwrap();
        let x = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(x.contains("tests=\"3\" failures=\"1\" errors=\"1\""), "{x}");
        assert!(x.contains("<error message=\"no samples\">"), "{x}");
        assert_eq!(crate::claim::exit_code(&claims), 1);
        assert_eq!(crate::claim::exit_code(&claims[..1]), 0);
        assert_eq!(
            crate::claim::exit_code(&[claims[0].clone(), claims[2].clone()]),
            2
        );
        assert_eq!(crate::claim::exit_code(&[]), 2);
        // The JSON carries the verdict by its label, and reads back.
        let json = serde_json::to_string(&claims[1]).unwrap();
        assert!(json.contains("\"verdict\":\"FAIL\""), "{json}");
        let back: Outcome = serde_json::from_str(&json).unwrap();
        assert!(back.verdict.failed());
        assert!(
            x.contains("1 &lt; 2") && x.contains("saw &quot;x&quot; &amp; y"),
            "{x}"
        );
    }

    #[test]
    fn checklist_shows_the_diff_of_a_failure() {
        let mut f = Failure::new("count", "");
        f.expected = Some("1".into());
        f.actual = Some("2".into());
        let o = Outcome {
            id: "x.y".into(),
            says: "".into(),
            verdict: Verdict::Fail(f),
            evidence: "e".into(),
            millis: 3,
            figures: vec![],
            timelines: Vec::new(),
            budgets: Vec::new(),
        };
        let line = strip_ansi(&checklist_line(&o));
        assert!(line.starts_with("FAIL  x.y"), "{line}");
        assert!(line.contains("measured: e"), "{line}");
        assert!(
            line.contains("why: count") && line.contains('1') && line.contains('2'),
            "{line}"
        );
    }
}
