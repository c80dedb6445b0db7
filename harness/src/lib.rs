//! stackproof proves, with real servers, that a web infrastructure design
//! does what its text says.
//!
//! A design is a folder: `design.toml` names networks, hosts and the
//! services on each host, `claims.toml` its sentences, each a check kind of
//! the library with its parameters. A [`Plan`] names a design (and what is
//! laid over it: a user's config files, a mutant) and [`Plan::prepare`]
//! reads and checks it all before anything starts. A [`Runner`] runs the
//! prepared design on a [`Schedule`]: it builds it as containers from an
//! image made locally from Debian packages, with the run's own DNS server,
//! CA and client, and measures its claims on the running servers, each
//! [`Outcome`] with its evidence and its [`Verdict`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), stackproof::Error> {
//! use stackproof::{Event, Plan, Runner, Schedule, report};
//!
//! let prepared = Plan::new("simple_web").prepare().await?; // or a folder: "./my_design"
//! let show = |e: Event<'_>| {
//!     if let Event::Ended(outcome) = e {
//!         println!("{}", report::checklist_line(outcome));
//!     }
//! };
//! let ran = Runner::new(prepared).run(Schedule::InTurn, show).await?;
//! let held = ran.outcomes.iter().filter(|o| o.verdict.passed()).count();
//! println!("{held} of {} claims held", ran.outcomes.len());
//! # Ok(()) }
//! ```
//!
//! A crate of your own runs a design's claims under `cargo test` with a
//! [`Suite`], and adds check kinds of its own ([`Kind`], with
//! [`kind_check!`]) and Rust claims ([`Claim::rust`]); see
//! `examples/own-suite/`.
//!
//! Every claim can fail: a design folder's `mutants/` holds broken variants,
//! and each suite proves its mutant makes its claim fail. Everything a run
//! creates is labelled with its run id and removed when the stack is
//! dropped, on panic, and on Ctrl-C; a start sweeps what killed runs left.

// Errors and failures carry their evidence (the server's own words, log
// lines) by value: each is built once, on a path that waits on containers,
// so its size costs nothing worth a box at every construction site.
#![allow(clippy::result_large_err)]

pub(crate) mod capture;
pub(crate) mod catalogue;
pub(crate) mod claim;
pub mod cli;
pub(crate) mod client;
pub mod compose;
pub(crate) mod config;
pub(crate) mod design;
pub(crate) mod diagnose;
pub(crate) mod diff;
pub(crate) mod dns;
pub mod docker;
pub(crate) mod error;
pub(crate) mod failure;
pub mod fixtures;
pub(crate) mod grade;
pub(crate) mod graph;
pub(crate) mod host;
pub(crate) mod html;
pub mod images;
pub mod kinds;
pub(crate) mod measure;
pub(crate) mod merge;
pub(crate) mod mutant;
pub(crate) mod network;
pub(crate) mod pki;
pub(crate) mod platform;
pub(crate) mod probe;
pub(crate) mod reach;
pub(crate) mod reaper;
pub(crate) mod recorder;
pub(crate) mod relay;
pub(crate) mod repeat;
pub mod report;
pub mod run;
pub(crate) mod skeleton;
pub(crate) mod spec;
pub(crate) mod stack;
pub(crate) mod suite;
pub(crate) mod tempdir;

// The types a user's crate needs, at the crate's root.
pub use claim::{Claim, Outcome, Verdict};
pub use design::Design;
pub use error::Error;
pub use failure::{CheckResult, Failure, Found, ensure, ensure_eq, ensure_measured};
pub use host::{ExecOutput, Host};
pub use kinds::{Facts, Kind, Kinds, Param, Params, ServerView, Ty};
pub use platform::Platform;
pub use recorder::{Figure, Recorder};
pub use run::{Event, Plan, Prepared, Runner, Schedule};
pub use stack::{Fault, Stack, WWW};
pub use suite::Suite;

/// The modules form layers: loading (fixtures, spec, design, mutants)
/// knows nothing of what runs containers above it; kinds depend on the
/// stack, never on the loader; reports read outcomes. An import cycle
/// between two modules breaks that, and so does loading importing what
/// runs; these tests name either.
#[cfg(test)]
mod layers {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Every source file's path under `harness/src` (the binary's left
    /// out) and its code without test modules; `tests.rs` files are tests.
    fn code_files() -> Vec<(std::path::PathBuf, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/src");
        let mut files = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() && !p.ends_with("bin") {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    files.push((
                        p.strip_prefix(&root).unwrap().to_path_buf(),
                        without_test_modules(&text),
                    ));
                }
            }
        }
        files.sort();
        files
    }

    /// Every top-level module and the modules its code (not its tests or
    /// comments) names as `crate::<module>`.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (rel, code) in code_files() {
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" {
                continue;
            }
            let deps = graph.entry(module.clone()).or_default();
            for line in code.lines().map(str::trim) {
                if line.starts_with("//") {
                    continue;
                }
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        deps.insert(name);
                    }
                }
            }
        }
        graph
    }

    /// One road: only the runner (`run/`) runs a claim or starts a
    /// design's stack (a mutant's, a variant's); every front end chooses a
    /// schedule and a sink.
    #[test]
    fn only_the_runner_runs_claims_and_starts_designs() {
        let mut elsewhere = Vec::new();
        for (rel, code) in code_files() {
            if rel.starts_with("run") {
                continue;
            }
            let calls = [
                "claim::run(",
                "claim::run_recorded(",
                ".start_mutant(",
                "design.start(",
                "Stack::start(",
            ];
            for call in calls {
                // stack.rs defines the start; it does not call it.
                if call == "Stack::start(" && rel == Path::new("stack.rs") {
                    continue;
                }
                if code.contains(call) {
                    elsewhere.push(format!("{} calls {call}", rel.display()));
                }
            }
        }
        assert!(
            elsewhere.is_empty(),
            "claims run and designs start through run::Runner only: {}",
            elsewhere.join(", ")
        );
    }

    /// `text` without its `#[cfg(test)]` items (a `mod tests { ... }`
    /// block, to its matching brace, or a `mod tests;` line): the whole
    /// file else, so an import after a test module still counts.
    fn without_test_modules(text: &str) -> String {
        let mut code = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("#[cfg(test)]") {
            code.push_str(&rest[..at]);
            let after = &rest[at..];
            let (semi, open) = (after.find(';'), after.find('{'));
            let end = match (semi, open) {
                (Some(s), Some(o)) if s < o => s + 1,
                (_, Some(o)) => o + block_len(&after[o..]),
                (Some(s), None) => s + 1,
                (None, None) => after.len(),
            };
            rest = &after[end..];
        }
        code.push_str(rest);
        code
    }

    /// The length of the block `code` starts with (at its `{`), to its
    /// matching `}`: braces inside strings, chars and comments do not count
    /// (a test of templates is full of `"{{"`).
    fn block_len(code: &str) -> usize {
        let b = code.as_bytes();
        let (mut i, mut depth) = (0, 0i32);
        while i < b.len() {
            match b[i] {
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'r' if matches!(b.get(i + 1), Some(b'#' | b'"'))
                    && (i == 0 || !b[i - 1].is_ascii_alphanumeric() && b[i - 1] != b'_') =>
                {
                    // A raw string: r"..." or r#"..."#, as many #s as it opens with.
                    let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                    let open = i + 1 + hashes;
                    if b.get(open) == Some(&b'"') {
                        let close = format!("\"{}", "#".repeat(hashes));
                        i = open
                            + 1
                            + code[open + 1..].find(&close).unwrap_or(code.len())
                            + close.len()
                            - 1;
                    }
                }
                b'"' => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                }
                // A char literal ('{', '\''), not a lifetime ('a).
                b'\'' if b.get(i + 2) == Some(&b'\'') => i += 2,
                b'\'' if b.get(i + 1) == Some(&b'\\') => {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                }
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        code.len()
    }

    /// What loads a design: reading it needs no engine, no stack and no claim run.
    const LOADING: &[&str] = &["fixtures", "platform", "spec", "design", "mutant"];
    /// What starts, runs and measures.
    const RUNNING: &[&str] = &[
        "stack", "run", "claim", "kinds", "suite", "relay", "probe", "measure", "client", "dns",
        "network", "docker", "reaper", "capture", "skeleton", "host",
    ];
    /// The one crossing left, and why: a design holds its claims bound to
    /// their kinds (`Design::claims`, read by `read_claims`). It goes when
    /// binding moves into the runner's plan.
    const KNOWN_CROSSINGS: &[(&str, &str)] = &[("design", "claim"), ("design", "kinds")];

    #[test]
    fn loading_never_imports_what_runs() {
        let graph = imports();
        let mut crossings = Vec::new();
        for from in LOADING {
            for to in graph.get(*from).into_iter().flatten() {
                if RUNNING.contains(&to.as_str()) && !KNOWN_CROSSINGS.contains(&(from, to.as_str()))
                {
                    crossings.push(format!("{from} -> {to}"));
                }
            }
        }
        assert!(
            crossings.is_empty(),
            "loading imports what runs: {}; move the code that needs it above loading (an `impl` in the running module, as run.rs does for Design::start)",
            crossings.join(", ")
        );
        // A crossing removed is taken off the list, so it cannot come back.
        for (from, to) in KNOWN_CROSSINGS {
            assert!(
                graph.get(*from).is_some_and(|d| d.contains(*to)),
                "{from} no longer imports {to}: take it off KNOWN_CROSSINGS"
            );
        }
    }

    #[test]
    fn a_test_module_is_cut_to_its_matching_brace_and_the_rest_is_read() {
        let text = "use crate::a;\n#[cfg(test)]\nmod tests { fn f() { crate::b; let _ = (\"{{\", '{', r#\"}\"#); } // }\n}\nuse crate::c;\n#[cfg(test)]\nmod more;\nuse crate::d;\n";
        let code = without_test_modules(text);
        assert!(
            code.contains("crate::a") && code.contains("crate::c") && code.contains("crate::d"),
            "{code}"
        );
        assert!(!code.contains("crate::b"), "{code}");
    }

    #[test]
    fn no_module_imports_a_module_that_imports_it_back() {
        let graph = imports();
        assert!(graph.len() > 20, "modules found: {:?}", graph.keys());
        // Depth-first: a module met again while still on the path closes a cycle.
        fn visit(
            m: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|p| p == m) {
                let mut cycle = path[at..].to_vec();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            if !done.insert(m.to_string()) {
                return None;
            }
            path.push(m.to_string());
            for d in graph.get(m).into_iter().flatten() {
                if let Some(c) = visit(d, graph, path, done) {
                    return Some(c);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        for m in graph.keys() {
            let cycle = visit(m, &graph, &mut Vec::new(), &mut done);
            assert!(
                cycle.is_none(),
                "an import cycle: {}",
                cycle.unwrap().join(" -> ")
            );
        }
    }
}
