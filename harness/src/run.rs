//! One road from a user's inputs to verdicts, for every front end (`check`,
//! `check --stacks`, `grade`, `mutants`, `bench`, the suites).
//!
//! A [`Plan`] names what to run: a design and everything laid over it (a
//! folder of the user's files, a mutant, the user's own config files and
//! install scripts) and which claims. [`Plan::prepare`] reads and checks it
//! all before any container starts, into a [`Prepared`] run. Then
//! [`in_turn`] runs claims one after another on a stack, replacing a stack
//! that a claim left changed, and [`on_stacks`] shares them among several
//! stacks. Both report as they go through [`Event`]s, so a front end only
//! prints.

use std::path::PathBuf;

use crate::claim::{self, Claim, Outcome};
use crate::config::{AddressArg, Applied, ConfigArg};
use crate::design::Design;
use crate::docker::Removal;
use crate::error::{Error, Result};
use crate::kinds::Kinds;
use crate::stack::Stack;
use crate::tempdir::TempDir;

/// What to run, before anything is read: built with the `with_*` methods.
#[derive(Clone)]
pub struct Plan {
    design: String,
    kinds: Kinds,
    extra_claims: Vec<Claim>,
    fixtures: Option<PathBuf>,
    mutant: Option<String>,
    configs: Vec<ConfigArg>,
    scripts: Vec<ConfigArg>,
    domain: Option<String>,
    addresses: Vec<AddressArg>,
    only: Vec<String>,
}

impl Plan {
    /// Design `design` (a built-in name or a folder), all its claims, nothing laid over it.
    pub fn new(design: impl Into<String>) -> Plan {
        Plan {
            design: design.into(),
            kinds: Kinds::builtin(),
            extra_claims: Vec::new(),
            fixtures: None,
            mutant: None,
            configs: Vec::new(),
            scripts: Vec::new(),
            domain: None,
            addresses: Vec::new(),
            only: Vec::new(),
        }
    }

    /// The check kinds its claims may use (the library's plus a crate's own).
    pub fn with_kinds(mut self, kinds: Kinds) -> Plan {
        self.kinds = kinds;
        self
    }

    /// Claims checked by Rust code, after the design's own.
    pub fn with_claims(mut self, claims: Vec<Claim>) -> Plan {
        self.extra_claims.extend(claims);
        self
    }

    /// A folder of the user's fixtures laid over the design (`--fixtures`).
    pub fn with_fixtures(mut self, dir: Option<PathBuf>) -> Plan {
        self.fixtures = dir;
        self
    }

    /// One of the design's mutants laid over it (`--mutant`).
    pub fn with_mutant(mut self, mutant: Option<String>) -> Plan {
        self.mutant = mutant;
        self
    }

    /// The user's own files, mapped onto the run (`--config`, `--script`,
    /// `--domain`, `--address`).
    pub fn with_users_files(
        mut self,
        configs: Vec<ConfigArg>,
        scripts: Vec<ConfigArg>,
        domain: Option<String>,
        addresses: Vec<AddressArg>,
    ) -> Plan {
        self.configs = configs;
        self.scripts = scripts;
        self.domain = domain;
        self.addresses = addresses;
        self
    }

    /// Only these claims (`--claim`); none means all.
    pub fn with_only(mut self, ids: Vec<String>) -> Plan {
        self.only = ids;
        self
    }

    /// Reads and checks everything the plan names, runs the install
    /// scripts (in throwaway hosts of the run's image) and maps the user's
    /// files: every mistake is found here, before the design starts.
    pub async fn prepare(self) -> Result<Prepared> {
        let mut design = Design::load_with(&self.design, &self.kinds)?;
        design.claims.extend(self.extra_claims);
        if let Some(m) = &self.mutant {
            design = design.with_mutant(m)?;
        }
        // STACKPROOF_FIXTURES is a layer already; the same folder given as a flag is not laid twice.
        let from_env = std::env::var_os("STACKPROOF_FIXTURES").map(PathBuf::from);
        let mut overlay_report = Vec::new();
        if let Some(dir) = self.fixtures.or(from_env.clone()) {
            if from_env.as_ref() != Some(&dir) {
                design = design.with_overlay(dir.clone())?;
            }
            overlay_report = overlay_use(&design, &dir);
        }
        let claims = select(&design.claims, &self.only)?;
        let scratch = TempDir::new("config");
        let mut configs = self.configs;
        let mut script_report = Vec::new();
        if !self.scripts.is_empty() {
            let docker = crate::docker::connect().await?;
            let image = crate::images::ensure_server_image(&docker, &design.fixtures).await?;
            for s in &self.scripts {
                let ran = crate::config::script::run(&s.path, &s.kind, &image.tag, scratch.path())
                    .await?;
                script_report.extend(ran.report);
                configs.push(ConfigArg {
                    host: s.host.clone(),
                    kind: s.kind.clone(),
                    origin: Some(format!("{} as {} wrote it", ran.target, s.path.display())),
                    path: ran.config,
                });
            }
        }
        let applied = crate::config::apply(
            &design,
            &configs,
            self.domain.as_deref(),
            &self.addresses,
            &scratch.path().join("mapped"),
        )?;
        if let Some(dir) = &applied.overlay {
            design = design.with_users_files(dir.clone())?;
        }
        Ok(Prepared {
            design,
            claims,
            applied,
            script_report,
            overlay_report,
            _scratch: scratch,
        })
    }
}

/// The claims of `all` named in `only` (all of them when it is empty); an
/// ID that names no claim is an error that lists the IDs there are.
pub fn select(all: &[Claim], only: &[String]) -> Result<Vec<Claim>> {
    if let Some(unknown) = only.iter().find(|id| !all.iter().any(|c| &c.id == *id)) {
        return Err(Error::Unknown {
            kind: "claim",
            name: unknown.clone(),
            known: all
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(all
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.id))
        .cloned()
        .collect())
}

/// Which files of the user's fixtures folder `dir` the design reads, and
/// which nothing reads (a misspelt name, a copy under `designs/`, a
/// service no host runs): one line for the used ones, a warning each for
/// the others.
fn overlay_use(design: &Design, dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                files.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    let (mut used, mut unused) = (Vec::new(), Vec::new());
    for rel in files {
        match why_unused(design, &rel) {
            None => used.push(rel),
            Some(why) => unused.push(format!("warning: {rel} is not used: {why}")),
        }
    }
    let mut report = vec![format!(
        "your fixtures {}: {} file(s) laid over the design{}",
        dir.display(),
        used.len(),
        if used.is_empty() {
            String::new()
        } else {
            format!(": {}", used.join(", "))
        }
    )];
    report.extend(unused);
    report
}

/// Why nothing of `design` reads the overlay file `rel`, or None when something does.
fn why_unused(design: &Design, rel: &str) -> Option<String> {
    let spec = &design.parts.spec;
    // A file for one host: `hosts/<host>/<rest>` stands for `<rest>` there.
    let (host, rel) = match rel.strip_prefix("hosts/") {
        Some(rest) => {
            let (h, rest) = rest.split_once('/').unwrap_or((rest, ""));
            if spec.host(h).is_none() {
                return Some(format!("the design has no host `{h}`"));
            }
            (Some(h), rest)
        }
        None => (None, rel),
    };
    if matches!(rel, "design.toml" | "claims.toml") || rel == spec.zone {
        return None;
    }
    if rel.starts_with("variants/") || rel.starts_with("images/") {
        return None;
    }
    let running: Vec<&str> = spec
        .hosts
        .iter()
        .filter(|h| host.is_none_or(|only| only == h.name))
        .flat_map(|h| h.services.iter().map(String::as_str))
        .collect();
    if let Some(rest) = rel.strip_prefix("services/") {
        let (service, _) = rest.split_once('/').unwrap_or((rest, ""));
        if !running.contains(&service) {
            return Some(format!(
                "no host{} runs `{service}`",
                host.map(|h| format!(" (here `{h}`)")).unwrap_or_default()
            ));
        }
        if rel == format!("services/{service}/service.toml") {
            return None;
        }
    }
    // Any other file is read when a running service installs it (or a folder holding it).
    let installed = running.iter().any(|s| {
        design.parts.services.get(*s).is_some_and(|svc| {
            svc.files.iter().any(|f| {
                f.source == rel || rel.starts_with(&format!("{}/", f.source.trim_end_matches('/')))
            })
        })
    });
    if installed {
        None
    } else if rel.starts_with("mutants/") || rel.starts_with("designs/") {
        Some(
            "a folder of your fixtures lays files over the design's by their path in the design (services/<name>/<file>), not under mutants/ or designs/"
                .into(),
        )
    } else {
        Some("no service of the design installs a file by that name".into())
    }
}

/// A plan read, checked and mapped: what starts, and which claims run.
pub struct Prepared {
    /// The design with everything laid over it.
    pub design: Design,
    /// The claims to run, in the claims file's order.
    pub claims: Vec<Claim>,
    applied: Applied,
    script_report: Vec<String>,
    overlay_report: Vec<String>,
    /// The mapped files live as long as the run.
    _scratch: TempDir,
}

impl Prepared {
    /// Starts the design.
    pub async fn start(&self) -> Result<Stack> {
        self.design.start().await
    }

    /// What a folder of the user's fixtures (`--fixtures`) laid over the
    /// design, and a warning for each of its files nothing of the design reads.
    pub fn overlay_report(&self) -> &[String] {
        &self.overlay_report
    }

    /// What the install scripts did, one line per call made harmless.
    pub fn script_report(&self) -> &[String] {
        &self.script_report
    }

    /// One section per user's file: its mapping lines, additions, warnings
    /// (placeholders such as `{{ server-1.private }}` until a stack fills them).
    pub fn mapping(&self) -> Vec<String> {
        // Before a stack runs there are no addresses: its placeholders in
        // words, never `{{ server-1.public }}` on the user's screen.
        self.applied
            .report
            .iter()
            .map(|r| placeholders_in_words(r))
            .collect()
    }

    /// The mapping with the running stack's addresses in place of its placeholders.
    pub fn mapping_on(&self, stack: &Stack) -> Vec<String> {
        self.applied
            .report
            .iter()
            .map(|r| {
                let mut shown = r.clone();
                for (k, v) in &stack.vars {
                    shown = shown.replace(&format!("{{{{ {k} }}}}"), v);
                }
                shown
            })
            .collect()
    }

    /// A start's failure as the user reads it: the mapped files named by
    /// the user's own paths, and what to write instead of what the server refuses.
    pub fn explain(&self, e: &Error) -> String {
        let mut text = self.applied.in_users_terms(&e.chain());
        for h in &self.applied.hints {
            text.push_str("\n  instead: ");
            text.push_str(h);
        }
        text
    }

    /// What the server refused to write instead, one line each.
    pub fn hints(&self) -> &[String] {
        &self.applied.hints
    }

    /// The user's files, when any were given.
    pub fn has_users_files(&self) -> bool {
        !self.applied.report.is_empty()
    }
}

/// What a run of claims says as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A claim ended (in the claims' order, also on several stacks).
    Ended(&'a Outcome),
    /// Something about the stacks the reader should know ("a claim left
    /// the stack changed; the claims after it run on a fresh one").
    Note(String),
}

/// The end of [`in_turn`]: the outcomes, the stack the last claim ran on,
/// and the removals of the stacks it replaced (dropping them waits).
pub struct InTurn {
    /// One per claim, in order.
    pub outcomes: Vec<Outcome>,
    /// The stack the last claim ran on.
    pub stack: Stack,
    /// Stacks being removed in the background.
    pub removals: Vec<Removal>,
}

/// Runs `claims` one after another on `stack` with `run_one` (normally
/// [`claim::run`]). A claim that leaves the stack changed (a fault it could
/// not undo) hands the claims after it a fresh stack of `design`, since
/// they must measure the design; when none starts, they are not run, each
/// an ERROR saying why. `keep` keeps the fresh stacks too.
pub async fn in_turn(
    design: &Design,
    mut stack: Stack,
    claims: &[Claim],
    keep: bool,
    run_one: impl AsyncFn(&Stack, &Claim) -> Outcome,
    on: impl Fn(Event<'_>),
) -> InTurn {
    let mut outcomes = Vec::with_capacity(claims.len());
    let mut removals = Vec::new();
    for (i, c) in claims.iter().enumerate() {
        let o = run_one(&stack, c).await;
        on(Event::Ended(&o));
        outcomes.push(o);
        if !stack.tainted() || i + 1 == claims.len() {
            continue;
        }
        match design.start().await {
            Ok(mut fresh) => {
                if keep {
                    fresh.keep();
                }
                on(Event::Note(format!(
                    "{} left the stack changed; the claims after it run on a fresh one (run {}, up in {} ms)",
                    c.id,
                    fresh.run.id,
                    fresh.up_time.as_millis()
                )));
                removals.push(std::mem::replace(&mut stack, fresh).remove_in_background());
            }
            Err(e) => {
                let why = format!(
                    "{} left the stack changed, and a fresh one did not start: {}",
                    c.id,
                    e.chain().lines().next().unwrap_or("")
                );
                for rest in &claims[i + 1..] {
                    let o = Outcome::not_run(rest, why.clone());
                    on(Event::Ended(&o));
                    outcomes.push(o);
                }
                break;
            }
        }
    }
    InTurn {
        outcomes,
        stack,
        removals,
    }
}

/// One outcome per claim from `runs` (each a run of the same claims, in
/// the same order: `check --repeat`). Held every time: PASS, each figure
/// given as its median with its min, p95 and max beside it. Never held: the
/// first run's FAIL or ERROR, saying how many runs. Both: FLAKY, with how
/// many runs it held in and the first failure's evidence. A claim whose
/// budgets are on a percentile (`percentile = 95`): a run past a budget and
/// nothing else is weighed with the others, and the claim holds when the
/// percentile of the runs is within the budget (k6's `p(95)<1000`).
pub fn fold_repeats(runs: Vec<Vec<Outcome>>) -> Vec<Outcome> {
    use crate::claim::{Flaky, Verdict};
    use crate::failure::Cause;
    let n = runs.len();
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let all: Vec<&Outcome> = runs.iter().filter_map(|r| r.get(i)).collect();
            let last = all[all.len() - 1];
            let on_percentile: Vec<crate::claim::Budget> = last
                .budgets
                .iter()
                .filter(|b| b.percentile.is_some())
                .cloned()
                .collect();
            let over_budget_only = |o: &Outcome| {
                !on_percentile.is_empty()
                    && matches!(&o.verdict, Verdict::Broken(f) if f.cause == Cause::OverBudget)
            };
            let over = all.iter().filter(|o| over_budget_only(o)).count();
            let held = all
                .iter()
                .filter(|o| o.verdict.held() || over_budget_only(o))
                .count();
            let millis = all.iter().map(|o| o.millis).max().unwrap_or(0);
            let mut folded = Outcome {
                millis,
                figures: figure_spread(&all),
                ..last.clone()
            };
            if last.verdict.skipped() {
                return folded;
            }
            let failed = all
                .iter()
                .find(|o| !o.verdict.held() && !over_budget_only(o));
            folded.evidence = format!("held {held} of {n} runs; last: {}", last.evidence);
            if failed.is_none() && !on_percentile.is_empty() {
                return judge_on_percentiles(folded, &all, &on_percentile, over);
            }
            folded.verdict = match failed {
                None => Verdict::Held,
                Some(f) if held == 0 => f.verdict.clone(),
                Some(f) => Verdict::Flaky(Flaky {
                    held,
                    runs: n,
                    first: f.verdict.failure().cloned().unwrap_or_else(|| {
                        crate::failure::Failure::new("did not hold", f.evidence.clone())
                    }),
                }),
            };
            folded
        })
        .collect()
}

/// A repeated claim whose runs all held but for budgets judged on a
/// percentile: PASS when each budget's percentile of the runs is within
/// it, FAIL (the design's, with the figures) when one is past it.
fn judge_on_percentiles(
    mut folded: Outcome,
    all: &[&Outcome],
    budgets: &[crate::claim::Budget],
    over: usize,
) -> Outcome {
    use crate::claim::Verdict;
    let n = all.len();
    let mut judged = Vec::new();
    for b in budgets {
        let p = b.percentile.unwrap_or(100).clamp(1, 100);
        let mut v: Vec<f64> = all
            .iter()
            .flat_map(|o| {
                o.figures
                    .iter()
                    .filter(|(f, _)| *f == b.figure)
                    .map(|(_, x)| *x)
            })
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let Some(at) = v
            .get(((v.len().max(1) - 1) as f64 * p as f64 / 100.0).round() as usize)
            .copied()
        else {
            continue;
        };
        let line = format!(
            "p{p} of {} over {n} runs: {at:.0} (budget {:.0}; {} run(s) past it)",
            b.figure,
            b.at_most,
            v.iter().filter(|x| **x > b.at_most).count()
        );
        if at > b.at_most {
            folded.verdict = Verdict::Broken(crate::failure::Failure::new(
                format!("the p{p} of {} was past its budget", b.figure),
                format!("{line}; {}", folded.evidence),
            ));
            return folded;
        }
        judged.push(line);
    }
    folded.verdict = Verdict::Held;
    folded.evidence = format!(
        "{}; {}{}",
        judged.join("; "),
        folded.evidence,
        if over > 0 {
            format!(" ({over} run(s) past a budget, weighed on the percentile)")
        } else {
            String::new()
        }
    );
    folded
}

/// Each figure of `outcomes` (the same claim's runs): its median, and
/// `min`, `p95` and `max` beside it when there is more than one value.
fn figure_spread(outcomes: &[&Outcome]) -> Vec<(String, f64)> {
    let mut names: Vec<&str> = Vec::new();
    for o in outcomes {
        for (name, _) in &o.figures {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let mut out = Vec::new();
    for name in names {
        let mut v: Vec<f64> = outcomes
            .iter()
            .flat_map(|o| o.figures.iter().filter(|(n, _)| n == name).map(|(_, x)| *x))
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        out.push((name.to_string(), at(0.5)));
        if v.len() > 1 {
            out.push((format!("{name} min"), v[0]));
            out.push((format!("{name} p95"), at(0.95)));
            out.push((format!("{name} max"), v[v.len() - 1]));
        }
    }
    out
}

/// Shares `claims` among `first` and the `more` stacks that started with
/// it: each stack takes the next claim when it is free, and every outcome
/// is reported in the claims' order as soon as the claims before it have
/// ended. A stack a claim left changed takes no more claims, unless every
/// other has stopped too. The stacks of `more` that started are returned,
/// for the caller to remove.
pub async fn on_stacks(
    first: &Stack,
    more: Vec<Result<Stack>>,
    claims: &[Claim],
    keep: bool,
    on: impl Fn(Event<'_>),
) -> (Vec<Outcome>, Vec<Stack>) {
    use std::sync::Mutex;
    let mut started = Vec::new();
    // Every stack up before any claim: bringing a stack up takes both
    // cores, and a failover measured meanwhile saw outages of 1.7-2.3 s
    // instead of 0.3 s.
    for s in more {
        match s {
            Ok(mut s) => {
                if keep {
                    s.keep();
                }
                on(Event::Note(format!(
                    "stack {} up in {} ms",
                    s.run.id,
                    s.up_time.as_millis()
                )));
                started.push(s);
            }
            Err(e) => on(Event::Note(format!(
                "another stack did not start ({}); its share goes to the others",
                e.chain().lines().next().unwrap_or("")
            ))),
        }
    }
    let shared = Shared {
        claims,
        next: Mutex::new(0),
        done: Mutex::new(vec![None; claims.len()]),
        reported: Mutex::new(0),
        healthy: std::sync::atomic::AtomicUsize::new(1 + started.len()),
        on: &on,
    };
    let workers = std::iter::once(first)
        .chain(started.iter())
        .map(|s| shared.worker(s));
    futures::future::join_all(workers).await;
    let outcomes = shared
        .done
        .into_inner()
        .expect("outcomes lock")
        .into_iter()
        .map(|o| o.expect("every claim ran"))
        .collect();
    (outcomes, started)
}

/// What the stacks of [`on_stacks`] share.
struct Shared<'a, F: Fn(Event<'_>)> {
    claims: &'a [Claim],
    next: std::sync::Mutex<usize>,
    done: std::sync::Mutex<Vec<Option<Outcome>>>,
    /// How many outcomes, in order, have been reported.
    reported: std::sync::Mutex<usize>,
    /// Stacks still taking claims.
    healthy: std::sync::atomic::AtomicUsize,
    on: &'a F,
}

impl<F: Fn(Event<'_>)> Shared<'_, F> {
    /// One stack's share: takes the next claim until none is left.
    async fn worker(&self, stack: &Stack) {
        use std::sync::atomic::Ordering;
        let mut counted_out = false;
        loop {
            let i = {
                let mut n = self.next.lock().expect("queue lock");
                *n += 1;
                *n - 1
            };
            let Some(c) = self.claims.get(i) else { return };
            let o = claim::run(stack, c).await;
            let mut done = self.done.lock().expect("outcomes lock");
            done[i] = Some(o);
            let mut reported = self.reported.lock().expect("report lock");
            while let Some(Some(o)) = done.get(*reported) {
                (self.on)(Event::Ended(o));
                *reported += 1;
            }
            drop((reported, done));
            if stack.tainted() && !counted_out {
                counted_out = true;
                if self.healthy.fetch_sub(1, Ordering::SeqCst) == 1 {
                    continue;
                }
                (self.on)(Event::Note(format!(
                    "a claim left stack {} changed; the other stacks take the claims left",
                    stack.run.id
                )));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_filter_that_names_no_claim_lists_the_ids_there_are() {
        let design = Design::load("simple_web").unwrap();
        let some = select(&design.claims, &["simple_web.issue.spof".into()]).unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!(
            select(&design.claims, &[]).unwrap().len(),
            design.claims.len()
        );
        let e = select(&design.claims, &["simple_web.typo".into()])
            .err()
            .unwrap()
            .chain();
        assert!(e.contains("unknown claim `simple_web.typo`"), "{e}");
        assert!(e.contains("simple_web.issue.spof"), "{e}");
    }

    #[test]
    fn a_fixtures_folder_says_what_it_laid_over_and_what_nothing_reads() {
        let dir = crate::tempdir::TempDir::new("overlay");
        let write = |rel: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "# mine\n").unwrap();
        };
        write("services/nginx/site.conf");
        write("services/nginx/sites.conf");
        write("services/apache/site.conf");
        write("designs/distributed/claims.toml");
        write("hosts/server-2/services/nginx/site.conf");
        let design = Design::load("distributed").unwrap();
        let report = overlay_use(&design, dir.path());
        let all = report.join("\n");
        assert!(
            report[0].ends_with(
                "2 file(s) laid over the design: hosts/server-2/services/nginx/site.conf, services/nginx/site.conf"
            ),
            "{all}"
        );
        assert!(
            all.contains("warning: services/nginx/sites.conf is not used: no service of the design installs a file by that name"),
            "{all}"
        );
        assert!(
            all.contains("warning: services/apache/site.conf is not used: no host runs `apache`"),
            "{all}"
        );
        assert!(
            all.contains(
                "warning: designs/distributed/claims.toml is not used: a folder of your fixtures"
            ),
            "{all}"
        );
    }

    /// `percentile = 95`: one run in twenty past the budget is weighed with
    /// the others; three are past p95; a run that broke otherwise is FLAKY.
    #[test]
    fn a_budget_on_a_percentile_weighs_a_repeated_claims_runs() {
        use crate::claim::{Budget, Verdict};
        use crate::failure::{Cause, Failure};
        let run = |outage: f64, broke: bool| {
            let over = outage > 1000.0;
            Outcome {
                id: "failover".into(),
                says: String::new(),
                verdict: match (broke, over) {
                    (true, _) => Verdict::Broken(Failure::new("requests kept failing", "")),
                    (false, true) => Verdict::Broken(Failure {
                        cause: Cause::OverBudget,
                        ..Failure::new("failover outage (ms) was past its budget", "")
                    }),
                    (false, false) => Verdict::Held,
                },
                evidence: format!("outage {outage}"),
                millis: 10,
                figures: vec![("failover outage (ms)".into(), outage)],
                timelines: Vec::new(),
                budgets: vec![Budget {
                    figure: "failover outage (ms)".into(),
                    at_most: 1000.0,
                    percentile: Some(95),
                }],
            }
        };
        let twenty = |past: usize, broke: bool| -> Vec<Vec<Outcome>> {
            (0..20)
                .map(|i| {
                    let outage = if i < past { 1200.0 } else { 300.0 + i as f64 };
                    vec![run(outage, broke && i == 19)]
                })
                .collect()
        };
        let one_past = fold_repeats(twenty(1, false));
        assert!(one_past[0].verdict.held(), "{:?}", one_past[0].verdict);
        assert!(
            one_past[0].evidence.starts_with(
                "p95 of failover outage (ms) over 20 runs: 319 (budget 1000; 1 run(s) past it)"
            ),
            "{}",
            one_past[0].evidence
        );
        let three_past = fold_repeats(twenty(3, false));
        match &three_past[0].verdict {
            Verdict::Broken(f) => {
                assert_eq!(
                    f.summary,
                    "the p95 of failover outage (ms) was past its budget"
                );
                assert!(
                    f.evidence
                        .starts_with("p95 of failover outage (ms) over 20 runs: 1200"),
                    "{}",
                    f.evidence
                );
            }
            other => panic!("{other:?}"),
        }
        let broke_once = fold_repeats(twenty(1, true));
        assert!(
            matches!(&broke_once[0].verdict, Verdict::Flaky(f) if f.held == 19),
            "{:?}",
            broke_once[0].verdict
        );
        // Without a percentile, a run past the budget is a failure like any other.
        let mut per_run = twenty(1, false);
        for r in &mut per_run {
            r[0].budgets[0].percentile = None;
        }
        assert!(matches!(
            &fold_repeats(per_run)[0].verdict,
            Verdict::Flaky(_)
        ));
    }

    #[test]
    fn repeats_fold_into_pass_flaky_or_the_first_failure_with_the_figures_spread() {
        use crate::claim::Verdict;
        use crate::failure::Failure;
        let o = |id: &str, held: bool, outage: f64| Outcome {
            id: id.into(),
            says: String::new(),
            verdict: if held {
                Verdict::Held
            } else {
                Verdict::Broken(Failure::new("too slow", format!("outage {outage}")))
            },
            evidence: format!("outage {outage}"),
            millis: 10,
            figures: vec![("outage (ms)".into(), outage)],
            timelines: Vec::new(),
            budgets: Vec::new(),
        };
        let runs = vec![
            vec![
                o("a", true, 300.0),
                o("b", true, 1.0),
                o("c", false, 1500.0),
            ],
            vec![
                o("a", false, 1200.0),
                o("b", true, 2.0),
                o("c", false, 1600.0),
            ],
            vec![
                o("a", true, 400.0),
                o("b", true, 3.0),
                o("c", false, 1700.0),
            ],
        ];
        let folded = fold_repeats(runs);
        match &folded[0].verdict {
            Verdict::Flaky(f) => {
                assert_eq!((f.held, f.runs), (2, 3));
                assert_eq!(f.first.summary, "too slow");
                assert_eq!(f.first.evidence, "outage 1200");
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(folded[0].verdict.label(), "FLAKY");
        assert!(folded[1].verdict.held());
        assert_eq!(
            folded[1].figures,
            [
                ("outage (ms)".to_string(), 2.0),
                ("outage (ms) min".to_string(), 1.0),
                ("outage (ms) p95".to_string(), 3.0),
                ("outage (ms) max".to_string(), 3.0),
            ]
        );
        assert!(folded[1].evidence.starts_with("held 3 of 3 runs"));
        assert!(folded[2].verdict.broken() && !folded[2].verdict.flaky());
        assert_eq!(crate::claim::exit_code(&folded), 1);
    }
}

/// `{{ server-1.public }}` as "server-1's public address", and the other
/// placeholders of a mapped file likewise.
fn placeholders_in_words(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = rest[start + 2..start + len].trim();
        let parts: Vec<&str> = name.split('.').collect();
        out.push_str(&match parts.as_slice() {
            ["self", net, "iface"] => format!("(this host's interface on {net})"),
            [net, "subnet"] => format!("(the {net} subnet)"),
            [net, "vip"] => format!("(the VIP on {net})"),
            [host, net] => format!("({host}'s address on {net})"),
            _ => format!("({name})"),
        });
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod words_tests {
    #[test]
    fn placeholders_read_as_words_before_a_stack_runs() {
        assert_eq!(
            super::placeholders_in_words(
                "server web-01 1.2.3.4:80 -> server-1 {{ server-1.public }}:80; -i {{ self.private.iface }} -s {{ private.subnet }}"
            ),
            "server web-01 1.2.3.4:80 -> server-1 (server-1's address on public):80; -i (this host's interface on private) -s (the private subnet)"
        );
    }
}
