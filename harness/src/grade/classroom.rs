//! GitHub Classroom's autograding workflow, written from a points file so
//! the two cannot disagree: one `autograding-command-grader` step per
//! claim with points, running `stackproof check <design> --claim <ID>`
//! on the student's files (a claim that breaks exits non-zero, which the
//! grader scores 0), worth the claim's points; then the reporter that sums
//! them.

use std::fmt::Write as _;

use super::points::Points;
use crate::design::Design;

/// The workflow (`.github/workflows/classroom.yml`) for `design`, its
/// claims scored by `points`, each check given `args` (the student's files
/// as `--config SERVER=PATH`, a `--platform`), in the order of the design.
pub fn workflow(design: &Design, points: &Points, args: &[String]) -> String {
    let mut y = format!(
        "# GitHub Classroom autograding for {name}, written by `stackproof classroom`\n\
         # from its points file: one test per claim with points, each running\n\
         # `stackproof check {name} --claim <ID>` on the student's files (exit 0\n\
         # when the claim held). The runner needs Docker and stackproof on its\n\
         # PATH (a self-hosted runner: `cargo install --path .` in stackproof's\n\
         # repository); the first test also builds the image, about a minute.\n\
         name: Autograding Tests\n\
         'on':\n- push\n- repository_dispatch\n\
         permissions:\n  checks: write\n  actions: read\n  contents: read\n\
         jobs:\n  run-autograding-tests:\n    runs-on: self-hosted\n\
         \x20   if: github.actor != 'github-classroom[bot]'\n\
         \x20   steps:\n    - name: Checkout code\n      uses: actions/checkout@v4\n",
        name = design.name
    );
    let mut ids = Vec::new();
    for claim in design.claims.iter().filter(|c| points.contains_key(&c.id)) {
        let step = step_id(&claim.id);
        let command = std::iter::once(format!(
            "stackproof check {} --claim {}",
            shell_word(&design.name),
            claim.id
        ))
        .chain(args.iter().map(|a| shell_word(a)))
        .collect::<Vec<_>>()
        .join(" ");
        let _ = write!(
            y,
            "    - name: {id}\n      id: {step}\n      uses: classroom-resources/autograding-command-grader@v1\n      with:\n        test-name: {name}\n        setup-command: ''\n        command: {command}\n        timeout: 10\n        max-score: {points}\n",
            id = claim.id,
            name = yaml_string(&format!("{}: {}", claim.id, claim.says)),
            command = yaml_string(&command),
            points = points[&claim.id],
        );
        ids.push(step);
    }
    let _ = write!(
        y,
        "    - name: Autograding Reporter\n      uses: classroom-resources/autograding-grading-reporter@v1\n      env:\n{}      with:\n        runners: {}\n",
        ids.iter()
            .map(|s| format!(
                "        {}_RESULTS: \"${{{{steps.{s}.outputs.result}}}}\"\n",
                s.to_uppercase()
            ))
            .collect::<String>(),
        ids.join(",")
    );
    y
}

/// A step id from a claim ID: `scale_up.lb.failover` -> `scale-up-lb-failover`.
fn step_id(claim: &str) -> String {
    claim
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A word for the shell, quoted when it holds anything but plain characters.
fn shell_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,=/:+@".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// A YAML double-quoted string.
fn yaml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
