//! Users' own configuration files, written the way people write them
//! (tests/configs/<kind>/: HAProxy, Nginx, Apache, keepalived, MariaDB,
//! PHP-FPM, Prometheus, iptables/ufw, an install script), checked as they
//! are with `stackproof check <design> --config [HOST:]SERVER=<file>`: each
//! test states what the checklist must say about its file. Every run maps
//! the file onto the run's hosts; none contacts an address of the file.

use std::process::{Command, Output};

mod class;
mod errors;
mod haproxy;
mod own_designs;
mod servers;

/// `stackproof check <design> --config haproxy=<file> --claim ...`.
pub(crate) fn check(
    design: &str,
    file: &str,
    claims: &[&str],
) -> (Output, String, String, Verdicts) {
    check_with(design, file, claims, &[])
}

/// The same, with more arguments (`--html <file>`).
pub(crate) fn check_with(
    design: &str,
    file: &str,
    claims: &[&str],
    extra: &[&std::ffi::OsStr],
) -> (Output, String, String, Verdicts) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs/haproxy")
        .join(file);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.args(["check", design, "--config"])
        .arg(format!("haproxy={}", path.display()));
    for c in claims {
        cmd.args(["--claim", &format!("{design}.{c}")]);
    }
    cmd.args(extra);
    let (out, verdicts) = run_with_report(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr, verdicts)
}

/// Each claim's verdict, as the run's JSON report (`check --json`) has it.
#[derive(Debug, Default)]
pub(crate) struct Verdicts(std::collections::BTreeMap<String, String>);

impl Verdicts {
    /// Whether claim `id` came out as `label` (`PASS`, `FAIL`, `ERROR`, `SKIP`).
    pub(crate) fn is(&self, label: &str, id: &str) -> bool {
        self.0.get(id).is_some_and(|v| v == label)
    }
}

/// Claims whose verdict is a sub-second budget.
const TIMED: &[&str] = &[
    "lb.failover",
    "lb.haproxy_crash_failover",
    "issue.split_brain",
    "issue.restart_downtime",
    "lb.health_check",
];

/// Checks run side by side (read) unless one measures a timed claim (write).
static TURN: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Runs `cmd` (a `stackproof check`) with `--json` to a file of its own and
/// reads the verdicts from it (none when the run stopped before its claims).
pub(crate) fn run_with_report(mut cmd: Command) -> (Output, Verdicts) {
    // A claim whose verdict is a sub-second budget (a failover's outage)
    // runs with no other check beside it: a stack starting on the other
    // core stretched a correct pair's outage from 0.3 s to 1.8 s.
    let timed = cmd
        .get_args()
        .any(|a| TIMED.iter().any(|t| a.to_string_lossy().ends_with(t)));
    let _alone;
    let _beside;
    if timed {
        _alone = TURN.write().unwrap_or_else(|e| e.into_inner());
    } else {
        _beside = TURN.read().unwrap_or_else(|e| e.into_inner());
    }
    let json = std::env::temp_dir().join(format!(
        "sp-configs-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&json);
    let out = cmd.arg("--json").arg(&json).output().unwrap();
    let mut verdicts = Verdicts::default();
    if let Ok(text) = std::fs::read_to_string(&json) {
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        for c in report["claims"].as_array().unwrap() {
            verdicts.0.insert(
                c["id"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            );
        }
        let _ = std::fs::remove_file(&json);
    }
    (out, verdicts)
}

/// `stackproof check simple_web_nginx --config nginx=<file> --claim ...`.
pub(crate) fn check_nginx(file: &str, claims: &[&str]) -> (Output, String, Verdicts) {
    check_files(
        "simple_web_nginx",
        &[&format!("nginx=nginx/{file}")],
        claims,
        &[],
    )
}

/// `stackproof check <design> --config <arg>... --claim ...`, each arg
/// `[HOST:]SERVER=<file under tests/configs>`; stdout and stderr together.
pub(crate) fn check_files(
    design: &str,
    files: &[&str],
    claims: &[&str],
    extra: &[&str],
) -> (Output, String, Verdicts) {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.args(["check", design]);
    for f in files {
        let (kind, path) = f.split_once('=').unwrap();
        cmd.arg("--config")
            .arg(format!("{kind}={}", configs.join(path).display()));
    }
    for c in claims {
        cmd.args(["--claim", &format!("{design}.{c}")]);
    }
    cmd.args(extra);
    let (out, verdicts) = run_with_report(cmd);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text, verdicts)
}
