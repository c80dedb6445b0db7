//! The field corpus (`tests/corpus/`): configuration files written the way
//! students and admins write them, each with an expectation file beside it
//! (`<name>.expect.toml`) saying, before any run, what an expert expects:
//! the design, the files as `--config` takes them, the claims concerned
//! and their verdicts, the exit status, and what the output must name (a
//! file and line, a cause). This suite runs every expectation as `stackproof
//! check` does and fails on any disagreement. One check at a time: the
//! timed claims (a failover's outage) are measured on a quiet machine.
//!
//! `cargo test --test corpus -- <name>` runs the expectations whose path
//! contains `<name>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;

/// One expectation file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    /// What an expert expects and why, in a sentence or two (for readers).
    why: String,
    /// The design checked (`scale_up`).
    design: String,
    /// `[HOST:]SERVER=FILE` as `--config` takes them; FILE beside this file.
    #[serde(default)]
    config: Vec<String>,
    /// `SERVER=FILE` as `--script` takes them; FILE beside this file.
    #[serde(default)]
    script: Vec<String>,
    /// More arguments for `check` (`--address 10.0.0.5=lb-1`).
    #[serde(default)]
    args: Vec<String>,
    /// The claims concerned (IDs without the design's prefix) and their
    /// verdicts: PASS, FAIL, ERROR or SKIP. Only these claims run.
    #[serde(default)]
    verdicts: BTreeMap<String, String>,
    /// The exit status: 0 all held, 1 a claim broke, 2 refused or not measured.
    exit: i32,
    /// Texts the output must contain (a file:line, a cause, the server's words).
    #[serde(default)]
    says: Vec<String>,
    /// Texts the output must not contain.
    #[serde(default)]
    says_not: Vec<String>,
    /// Per platform (`[on.debian-12]`), the verdicts on it, for a file
    /// whose verdicts differ between releases: the run is one `check
    /// --platform` over all of them, a report per platform. An empty
    /// table: the platform refuses the file (no claim runs there).
    #[serde(default)]
    on: BTreeMap<String, BTreeMap<String, String>>,
}

/// Every `*.expect.toml` under `tests/corpus/`, sorted.
fn expectations(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            expectations(&p, out);
        } else if p.to_string_lossy().ends_with(".expect.toml") {
            out.push(p);
        }
    }
}

/// Runs one expectation; the disagreements, or nothing.
fn run(path: &Path) -> Result<(), Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let want: Expectation =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path.parent().expect("a folder");
    let beside = |arg: &str| -> String {
        let (left, file) = arg.split_once('=').expect("[HOST:]SERVER=FILE");
        format!("{left}={}", dir.join(file).display())
    };
    let json = std::env::temp_dir().join(format!("sp-corpus-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&json);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.args(["check", &want.design]);
    for c in &want.config {
        cmd.arg("--config").arg(beside(c));
    }
    for s in &want.script {
        cmd.arg("--script").arg(beside(s));
    }
    cmd.args(&want.args);
    // Only the claims concerned; none for a refusal, which stops before any.
    let mut claims: Vec<&String> = want.verdicts.keys().collect();
    for verdicts in want.on.values() {
        claims.extend(verdicts.keys());
    }
    claims.sort();
    claims.dedup();
    for c in claims {
        cmd.args(["--claim", &format!("{}.{c}", want.design)]);
    }
    if !want.on.is_empty() {
        let platforms: Vec<&str> = want.on.keys().map(String::as_str).collect();
        cmd.args(["--platform", &platforms.join(",")]);
    }
    let out = cmd
        .arg("--json")
        .arg(&json)
        .output()
        .map_err(|e| format!("run stackproof: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut wrong = Vec::new();
    if want.on.is_empty() {
        let got = verdicts_in(&json, &want.design)?;
        compare(&want.verdicts, &got, "", &mut wrong);
    }
    for (platform, verdicts) in &want.on {
        // check --platform a,b writes report.<platform>.json beside --json.
        let stem = json.file_stem().unwrap_or_default().to_string_lossy();
        let own = json.with_file_name(format!("{stem}.{platform}.json"));
        let got = verdicts_in(&own, &want.design)?;
        if verdicts.is_empty() && !got.is_empty() {
            wrong.push(format!("on {platform}: expected a refusal, but claims ran"));
        }
        compare(verdicts, &got, &format!("on {platform}: "), &mut wrong);
    }
    if out.status.code() != Some(want.exit) {
        wrong.push(format!(
            "exit: expected {}, got {:?}",
            want.exit,
            out.status.code()
        ));
    }
    for s in &want.says {
        if !said.contains(s.as_str()) {
            wrong.push(format!("the output does not say `{s}`"));
        }
    }
    for s in &want.says_not {
        if said.contains(s.as_str()) {
            wrong.push(format!("the output says `{s}`"));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} disagrees with its expectation ({}):\n  {}\n--- output ---\n{said}",
        path.display(),
        want.why.trim(),
        wrong.join("\n  ")
    )
    .into())
}

/// The verdicts of a JSON report, by claim ID without the design's
/// prefix; none when there is no report (the file was refused). The
/// report is removed once read.
fn verdicts_in(json: &Path, design: &str) -> Result<BTreeMap<String, String>, Failed> {
    let mut got = BTreeMap::new();
    if let Ok(report) = std::fs::read_to_string(json) {
        let report: serde_json::Value =
            serde_json::from_str(&report).map_err(|e| format!("report: {e}"))?;
        for c in report["claims"].as_array().into_iter().flatten() {
            let id = c["id"].as_str().unwrap_or_default();
            let short = id.strip_prefix(&format!("{design}.")).unwrap_or(id);
            got.insert(
                short.to_string(),
                c["verdict"].as_str().unwrap_or_default().to_string(),
            );
        }
        let _ = std::fs::remove_file(json);
    }
    Ok(got)
}

/// Each expected verdict against the one reported, a line per disagreement.
fn compare(
    want: &BTreeMap<String, String>,
    got: &BTreeMap<String, String>,
    on: &str,
    wrong: &mut Vec<String>,
) {
    for (claim, verdict) in want {
        match got.get(claim) {
            Some(v) if v == verdict => {}
            Some(v) => wrong.push(format!("{on}{claim}: expected {verdict}, got {v}")),
            None => wrong.push(format!("{on}{claim}: expected {verdict}, not run")),
        }
    }
}

fn main() {
    let mut args = Arguments::from_args();
    // One check at a time: see the module's comment.
    args.test_threads.get_or_insert(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut found = Vec::new();
    expectations(&root, &mut found);
    let trials = found
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .trim_end_matches(".expect.toml")
                .to_string();
            Trial::test(name, move || run(&path))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
