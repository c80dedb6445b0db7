//! Every built-in design on every platform that is not the default: the
//! design suites (`cargo test --test scale_up`) prove each claim and each
//! mutant on the default platform; this one runs `stackproof check` of
//! each design on each other platform and compares its verdicts with the
//! golden ones recorded for that platform (`tests/golden/<platform>/`, as
//! `ci/golden.sh record` writes them). One check at a time: the timed
//! claims are measured on a quiet machine.
//!
//! `cargo test --test platforms -- debian-12` runs that platform's. One
//! more test answers the upgrade question end to end (`upgrade::`): a
//! file checked on two platforms, its reports compared by `diff`.

use std::path::Path;
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

const DESIGNS: &[&str] = &[
    "simple_web",
    "simple_web_nginx",
    "distributed",
    "secured_monitored",
    "scale_up",
];

/// The platforms file's default and every other platform's name.
fn platforms(root: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(root.join("fixtures/images/server/platforms.toml"))
        .expect("the platforms file");
    let table: toml::Table = toml::from_str(&text).expect("the platforms file is TOML");
    let default = table["default"].as_str().expect("a default").to_string();
    let others = table["platform"]
        .as_table()
        .expect("[platform.<name>] tables")
        .keys()
        .filter(|p| **p != default)
        .cloned()
        .collect();
    (default, others)
}

/// Checks `design` on `platform` and compares its verdicts with the golden ones.
fn check(root: &Path, design: &str, platform: &str) -> Result<(), Failed> {
    let golden = root.join(format!("tests/golden/{platform}/{design}.verdicts.txt"));
    let want = std::fs::read_to_string(&golden)
        .map_err(|e| format!("{}: {e} (record it: STACKPROOF_PLATFORM={platform} GOLDEN_VERDICTS_ONLY=1 bash ci/golden.sh record {design})", golden.display()))?;
    let json = std::env::temp_dir().join(format!(
        "sp-platforms-{}-{design}-{platform}.json",
        std::process::id()
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["check", design, "--platform", platform, "--json"])
        .arg(&json)
        .env_remove("STACKPROOF_PLATFORM")
        .output()
        .map_err(|e| format!("run stackproof: {e}"))?;
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let report = std::fs::read_to_string(&json)
        .map_err(|_| format!("check {design} --platform {platform} wrote no report:\n{said}"))?;
    let _ = std::fs::remove_file(&json);
    let report: serde_json::Value =
        serde_json::from_str(&report).map_err(|e| format!("report: {e}"))?;
    if report["platform"] != platform {
        return Err(format!(
            "the report says platform {}, not {platform}",
            report["platform"]
        )
        .into());
    }
    let mut got: Vec<String> = report["claims"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} {}",
                c["id"].as_str().unwrap_or(""),
                c["verdict"].as_str().unwrap_or("")
            )
        })
        .collect();
    got.sort();
    let want: Vec<&str> = want.lines().filter(|l| !l.trim().is_empty()).collect();
    if got != want {
        return Err(format!(
            "{design} on {platform}: verdicts moved from {}:\n{}\n--- output ---\n{said}",
            golden.display(),
            pretty_assertions::StrComparison::new(&want.join("\n"), &got.join("\n"))
        )
        .into());
    }
    Ok(())
}

/// The upgrade question, end to end: a file whose verdicts differ between
/// two platforms (`tests/corpus/platforms/listen-80-http2`: both claims
/// FAIL on Debian 12, hold on Debian 13), checked on both in one run,
/// then the two reports compared by `diff` as two commits' are: exit 1
/// from the release where they held to the one where they broke, 0 the
/// other way.
fn diff_of_two_platforms(root: &Path, old: &str, new: &str) -> Result<(), Failed> {
    let dir = std::env::temp_dir().join(format!("sp-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let json = dir.join("report.json");
    let file = root.join("tests/corpus/platforms/listen-80-http2");
    let bin = env!("CARGO_BIN_EXE_stackproof");
    let out = Command::new(bin)
        .args(["check", "simple_web_nginx", "--config"])
        .arg(format!("nginx={}", file.display()))
        .args(["--platform", &format!("{old},{new}"), "--json"])
        .arg(&json)
        .env_remove("STACKPROOF_PLATFORM")
        .output()
        .map_err(|e| format!("run stackproof: {e}"))?;
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) {
        return Err(format!(
            "check on {old},{new}: expected exit 1 (claims broke on {old}):\n{said}"
        )
        .into());
    }
    let report = |p: &str| dir.join(format!("report.{p}.json"));
    let diff = |base: &str, head: &str| {
        Command::new(bin)
            .arg("diff")
            .args([report(base), report(head)])
            .output()
            .map(|o| {
                (
                    o.status.code(),
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                )
            })
            .map_err(|e| format!("run stackproof diff: {e}"))
    };
    let (upgrade, up_said) = diff(old, new)?;
    let (downgrade, down_said) = diff(new, old)?;
    let _ = std::fs::remove_dir_all(&dir);
    let mut wrong = Vec::new();
    if upgrade != Some(0) || !up_said.contains(&format!("({old} -> {new})")) {
        wrong.push(format!("diff {old} {new}: expected exit 0 (nothing that held broke), got {upgrade:?}:\n{up_said}"));
    }
    for claim in ["web.static_by_nginx", "app.dynamic_by_php"] {
        let line = format!("REGRESSED  simple_web_nginx.{claim} PASS -> FAIL");
        if downgrade != Some(1) || !down_said.contains(&line) {
            wrong.push(format!(
                "diff {new} {old}: expected exit 1 and `{line}`, got {downgrade:?}:\n{down_said}"
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n--- check ---\n{said}", wrong.join("\n")).into())
    }
}

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let (default, others) = platforms(&root);
    let mut trials = Vec::new();
    if let Some(old) = others.first().cloned() {
        let root = root.clone();
        trials.push(Trial::test(
            format!("upgrade::{old}_to_{default}_diff"),
            move || diff_of_two_platforms(&root, &old, &default),
        ));
    }
    for platform in others {
        for design in DESIGNS {
            let (root, platform) = (root.clone(), platform.clone());
            trials.push(Trial::test(format!("{platform}::{design}"), move || {
                check(&root, design, &platform)
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
