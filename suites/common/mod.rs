//! Helpers the suites share.

use std::process::{Command, Stdio};

/// A program from Debian's packages, installed with apt-get when missing
/// and this process may (root or passwordless sudo), saying so.
pub fn debian_tool(program: &str, packages: &[&str]) -> std::path::PathBuf {
    let found = |p: &str| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok()
            .then(|| std::path::PathBuf::from(p))
    };
    if let Some(p) = found(program) {
        return p;
    }
    eprintln!(
        "{program} is missing: installing {} with apt-get (once)",
        packages.join(" ")
    );
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    let prefix: Vec<&str> = if root { vec![] } else { vec!["sudo", "-n"] };
    let install: Vec<&str> = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
        .into_iter()
        .chain(packages.iter().copied())
        .collect();
    for args in [vec!["apt-get", "update", "-qq"], install] {
        let all: Vec<&str> = prefix.iter().copied().chain(args).collect();
        let _ = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status();
    }
    found(program).unwrap_or_else(|| {
        panic!(
            "{program} could not be installed: run `sudo apt-get install {}`",
            packages.join(" ")
        )
    })
}
