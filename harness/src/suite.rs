//! The test driver behind `cargo test --test <design>`: one test per claim,
//! named by its ID, plus one test per mutant proving its claim can fail.
//! A user's own crate drives its own design folder the same way:
//!
//! ```no_run
//! // tests/my_infra.rs, with `harness = false` for it in Cargo.toml
//! fn main() -> std::process::ExitCode {
//!     stackproof::Suite::new(concat!(env!("CARGO_MANIFEST_DIR"), "/infra"))
//!         // .kind(my_kind)          a check kind of your own, usable in claims.toml
//!         // .claim(my_rust_claim)   a Rust check of your own on the same stack
//!         .run()
//! }
//! ```
//!
//! Claims share one running stack (started on first use, removed at the end)
//! and run one at a time, because some stop hosts and services. Under
//! cargo-nextest, which gives every test a process of its own, the claims
//! are one test (`<design>::claims`) so they still share one stack. Each mutant
//! starts its own stack from the mutant's fixtures, beside the claims. Output is libtest's, so
//! `cargo test --test simple_web -- dns` filters and CI parsers read it.

use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::claim::{self, Claim, Mutant, Verdict};
use crate::design::Design;
use crate::kinds::{Kind, Kinds};
use crate::report::{checklist_line, checklist_line_short};
use crate::run::MutantPath;

/// The runner, whose pool of the design's stacks the tests take from one
/// at a time (so there are never more stacks than test threads), and the
/// turn every test takes.
struct Pool {
    runner: crate::run::Runner,
    /// Every test holds it to read; a claim of the design whose verdict is
    /// a sub-second time budget holds it to write, so it runs while no
    /// other test of the process starts a stack or restarts services (the
    /// background removal of a finished stack and the making of a spare's
    /// idle hosts may still go on).
    quiet: tokio::sync::RwLock<()>,
}

/// What a test holds of [`Pool::quiet`] while it runs (released on drop),
/// and under nextest the same turn among the machine's test processes.
enum Turn<'a> {
    Shared {
        _guard: tokio::sync::RwLockReadGuard<'a, ()>,
        _machine: Option<MachineTurn>,
    },
    Alone {
        _guard: tokio::sync::RwLockWriteGuard<'a, ()>,
        _machine: Option<MachineTurn>,
    },
}

/// A turn among every test process of the machine: nextest runs each test
/// in a process of its own, where [`Pool::quiet`] sees no other test. Two
/// lock files in the temporary folder: the turn itself (shared, or alone),
/// and a gate taken to ask for it, which one waiting to run alone holds
/// until it does, so the tests that keep starting beside others cannot keep
/// it waiting for ever. Released when dropped (or when the process ends).
pub(crate) struct MachineTurn {
    _turn: std::fs::File,
}

impl MachineTurn {
    /// Waits for the turn in `dir` (blocking: call it off the runtime).
    pub(crate) fn take(dir: &std::path::Path, alone: bool) -> std::io::Result<MachineTurn> {
        let open = |name: &str| {
            let path = dir.join(name);
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                // Made by another user: reading is enough to lock it.
                .or_else(|_| std::fs::File::open(&path))
        };
        let gate = open("stackproof-turn-gate.lock")?;
        let turn = open("stackproof-turn.lock")?;
        gate.lock()?;
        if alone {
            turn.lock()?;
        } else {
            turn.lock_shared()?;
        }
        drop(gate);
        Ok(MachineTurn { _turn: turn })
    }

    /// Under nextest, the machine-wide turn; elsewhere none is needed (a
    /// libtest run is one process, and cargo runs suites one at a time).
    async fn under_nextest(alone: bool) -> Option<MachineTurn> {
        std::env::var_os("NEXTEST_RUN_ID")?;
        let dir = std::env::temp_dir();
        match tokio::task::spawn_blocking(move || MachineTurn::take(&dir, alone)).await {
            Ok(Ok(t)) => Some(t),
            Ok(Err(e)) => {
                eprintln!(
                    "stackproof: no turn among this machine's test processes ({e}); a timed claim may share the CPU with another test"
                );
                None
            }
            Err(_) => None,
        }
    }
}

type Shared = Arc<Pool>;

impl Pool {
    /// The test's turn: alone for a claim of a timed kind, else beside
    /// others; under nextest, among every test process of the machine too.
    async fn turn(&self, claim: Option<&Claim>) -> Turn<'_> {
        if claim.is_some_and(Claim::is_timed) {
            Turn::Alone {
                _guard: self.quiet.write().await,
                _machine: MachineTurn::under_nextest(true).await,
            }
        } else {
            Turn::Shared {
                _guard: self.quiet.read().await,
                _machine: MachineTurn::under_nextest(false).await,
            }
        }
    }
}

/// A suite over one design folder: its claims (from `claims.toml`), any
/// Rust claims of your own, and its mutants, as libtest tests.
pub struct Suite {
    design: String,
    kinds: Kinds,
    extra: Vec<Claim>,
    configs: Vec<crate::config::ConfigArg>,
    addresses: Vec<crate::config::AddressArg>,
}

impl Suite {
    /// The suite of `design`: a built-in design's name or a design folder's path.
    pub fn new(design: impl Into<String>) -> Suite {
        Suite {
            design: design.into(),
            kinds: Kinds::builtin(),
            extra: Vec::new(),
            configs: Vec::new(),
            addresses: Vec::new(),
        }
    }

    /// Checks the design with a configuration file of your own, as it is on
    /// your server (`"haproxy=infra/haproxy.cfg".parse()`), mapped onto the
    /// run as `stackproof check --config` does; the mapping is printed.
    pub fn config(mut self, config: crate::config::ConfigArg) -> Suite {
        self.configs.push(config);
        self
    }

    /// Says what an address in your files is in the design
    /// (`"10.0.0.5=lb-1".parse()`), as `stackproof check --address` does.
    pub fn address(mut self, address: crate::config::AddressArg) -> Suite {
        self.addresses.push(address);
        self
    }

    /// Adds a check kind of your own, usable by name in the claims file.
    pub fn kind(mut self, kind: Kind) -> Suite {
        self.kinds = self.kinds.with(kind);
        self
    }

    /// Adds a claim checked by Rust code of your own ([`Claim::rust`]),
    /// run on the same stack after the design's claims.
    pub fn claim(mut self, claim: Claim) -> Suite {
        self.extra.push(claim);
        self
    }

    /// Runs the suite with libtest's arguments; returns its exit code.
    pub fn run(self) -> ExitCode {
        run(self)
    }
}

fn run(suite: Suite) -> ExitCode {
    let mut args = Arguments::from_args();
    // A claim has a stack of the design to itself for its whole run (it
    // stops hosts and restarts services): the pool starts a second one
    // when both threads want one. Two threads: the machines this runs on
    // have two cores, and timing claims need one each (3 threads made
    // scale_up's failovers miss their budgets). `--test-threads` overrides.
    args.test_threads = args.test_threads.or(Some(2));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();

    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
    );
    runtime.spawn(async { crate::docker::clean_up_on_interrupt() });

    // The design as check prepares it: its claims, the crate's own, the
    // user's files mapped onto the run (the mapped folder lives as long as the suite).
    let plan = crate::run::Plan::new(&suite.design)
        .with_kinds(suite.kinds)
        .with_claims(suite.extra)
        .with_users_files(suite.configs, Vec::new(), None, suite.addresses);
    let prepared = match runtime.block_on(plan.prepare()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("stackproof: {}", e.chain());
            return ExitCode::FAILURE;
        }
    };
    for r in prepared.mapping() {
        eprintln!("stackproof: {r}");
    }
    let design = prepared.design.clone();
    // A suite that would measure nothing must not pass, as `check` exits 2.
    if design.claims.iter().all(|c| c.skip.is_some()) {
        eprintln!(
            "stackproof: every claim of {} is skipped ({}): nothing would be measured",
            design.name,
            design.claims.len()
        );
        return ExitCode::from(2);
    }
    let design = Arc::new(design);
    let claims = design.claims.clone();
    let mutants = design.mutants.clone();
    let shared: Shared = Arc::new(Pool {
        runner: crate::run::Runner::new(prepared)
            .with_notes(|note| eprintln!("stackproof: {note}")),
        quiet: Default::default(),
    });
    // nextest runs every test in a process of its own (and says so while
    // listing too): one trial per claim would start a stack per claim, so
    // there the claims are one trial on one stack, each reported in its output.
    let claim_trials: Vec<Trial> = if std::env::var_os("NEXTEST_RUN_ID").is_some() {
        vec![all_claims_trial(
            claims.clone(),
            design.clone(),
            runtime.clone(),
            shared.clone(),
        )]
    } else {
        claims
            .iter()
            .map(|c| claim_trial(c.clone(), runtime.clone(), shared.clone()))
            .collect()
    };
    // Mutants a running stack of the design may take (same topology; see
    // `Stack::in_place`) queue with the claims on the design's stacks; the
    // others start stacks of their own beside them.
    let reuse = reuse_running_stack();
    let (on_shared, own): (Vec<Mutant>, Vec<Mutant>) = mutants
        .into_iter()
        .partition(|m| reuse && shared.runner.may_run_in_place(m));
    let trial = |m: Mutant, on_pool: bool| {
        mutant_trial(
            m,
            design.clone(),
            &claims,
            runtime.clone(),
            shared.clone(),
            on_pool,
        )
    };
    let mut shared_trials = claim_trials;
    shared_trials.extend(on_shared.into_iter().map(|m| trial(m, true)));
    let own_trials: Vec<Trial> = own.into_iter().map(|m| trial(m, false)).collect();
    let trials = interleave(shared_trials, own_trials);
    if let Some(unmatched) = filter_matching_nothing(&args, &trials, &design.name) {
        eprintln!("stackproof: {unmatched}");
        return ExitCode::from(2);
    }

    // With every trial in this process, each stack has the next one's
    // hosts made meanwhile; not under nextest (a process per test) nor
    // for a filtered run, which may start a single stack.
    let prewarm = (std::env::var_os("NEXTEST_RUN_ID").is_none() && args.filter.is_none())
        .then(crate::skeleton::Prewarm::start);
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(p) = prewarm {
        runtime.block_on(p.finish());
    }
    // Remove the design's stacks inside the runtime, before it shuts down,
    // and wait for the mutants' stacks still being removed.
    runtime.block_on(async { shared.runner.finish() });
    conclusion.exit_code()
}

/// The message for a name filter (`cargo test --test scale_up -- typo`)
/// that matches none of this suite's tests, naming the tests there are:
/// a run that measured nothing must not pass. A filter aimed at another
/// design's suite (`scale_up.lb.failover`, seen by every suite of `cargo
/// test --workspace -- scale_up.lb.failover`) is not this suite's to refuse.
fn filter_matching_nothing(args: &Arguments, trials: &[Trial], design: &str) -> Option<String> {
    let filter = args.filter.as_deref().filter(|_| !args.list)?;
    let matches = |name: &str| {
        if args.exact {
            name == filter
        } else {
            name.contains(filter)
        }
    };
    if trials.iter().any(|t| matches(t.name())) {
        return None;
    }
    let prefix = filter.split('.').next().unwrap_or("");
    if prefix != design && crate::design::builtin_names().iter().any(|d| d == prefix) {
        return None;
    }
    Some(format!(
        "no test of {design}'s suite matches `{filter}`; its tests are: {}",
        trials
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Tests on the design's own stacks and mutants with stacks of their own,
/// taken turn about (the test threads take trials in this order), so the
/// mutants' long starts spread over the run instead of all coming last.
fn interleave(claims: Vec<Trial>, mutants: Vec<Trial>) -> Vec<Trial> {
    let (mut claims, mut mutants) = (claims.into_iter(), mutants.into_iter());
    let mut all = Vec::new();
    loop {
        match (claims.next(), mutants.next()) {
            (None, None) => return all,
            (c, m) => all.extend(c.into_iter().chain(m)),
        }
    }
}

fn claim_trial(claim: Claim, rt: Arc<tokio::runtime::Runtime>, shared: Shared) -> Trial {
    let skipped = claim.skip.is_some();
    Trial::test(claim.id.clone(), move || {
        rt.block_on(async {
            let _turn = shared.turn(Some(&claim)).await;
            let outcome = shared.runner.claim(&claim).await?;
            println!("{}", checklist_line(&outcome));
            if outcome.verdict.passed() {
                Ok(())
            } else {
                Err(Failed::from(checklist_line(&outcome)))
            }
        })
    })
    // A claim its design skips shows as ignored, with its reason in `stackproof check`.
    .with_ignored_flag(skipped)
}

/// Every claim of `design` as one test on one stack (for nextest): each
/// claim's checklist line is printed; the test fails naming every claim that
/// did not hold.
fn all_claims_trial(
    claims: Vec<Claim>,
    design: Arc<Design>,
    rt: Arc<tokio::runtime::Runtime>,
    shared: Shared,
) -> Trial {
    Trial::test(format!("{}::claims", design.name), move || {
        rt.block_on(async {
            let mut not_held = Vec::new();
            for claim in &claims {
                let _turn = shared.turn(Some(claim)).await;
                let outcome = shared.runner.claim(claim).await?;
                println!("{}", checklist_line(&outcome));
                if !outcome.verdict.passed() && !outcome.verdict.skipped() {
                    not_held.push(format!("{} {}", outcome.verdict.label(), claim.id));
                }
            }
            if not_held.is_empty() {
                Ok(())
            } else {
                Err(Failed::from(format!(
                    "{} of {} claims did not hold: {}",
                    not_held.len(),
                    claims.len(),
                    not_held.join(", ")
                )))
            }
        })
    })
}

/// Whether mutants that change only service files run on the claims'
/// running stack: yes, unless `STACKPROOF_MUTANTS_FRESH=1` asks for a
/// fresh stack each (to compare the two ways).
fn reuse_running_stack() -> bool {
    std::env::var("STACKPROOF_MUTANTS_FRESH").map_or(true, |v| v.is_empty() || v == "0")
}

/// A mutant's test. With `on_pool`, it runs on the claims' running stack
/// when that gives what a fresh start would (see [`Stack::in_place`]),
/// otherwise on a fresh stack of its own: the runner decides.
fn mutant_trial(
    mutant: Mutant,
    design: Arc<Design>,
    claims: &[Claim],
    rt: Arc<tokio::runtime::Runtime>,
    pool: Shared,
    on_pool: bool,
) -> Trial {
    let name = format!("mutant::{}::fails::{}", mutant.name, mutant.fails);
    let claim = claims.iter().find(|c| c.id == mutant.fails).cloned();
    Trial::test(name, move || {
        let Some(claim) = claim else {
            return Err(Failed::from(format!(
                "mutant `{}` names claim `{}`, which {} does not have (fix fails= in {})",
                mutant.name,
                mutant.fails,
                design.name,
                mutant.dir.join("mutant.toml").display()
            )));
        };
        rt.block_on(async {
            let _turn = pool.turn(None).await;
            let (outcome, path) = pool.runner.mutant(&mutant, &claim, on_pool).await?;
            let on = match path {
                MutantPath::InPlace(changed) => {
                    format!(", on the running stack ({changed} changed)")
                }
                MutantPath::Fresh => String::new(),
            };
            println!(
                "mutant {} ({}){on}:\n{}",
                mutant.name,
                mutant.why,
                checklist_line_short(&outcome)
            );
            mutant_verdict(&mutant, &claim, &outcome)
        })
    })
}

/// A mutant's test passes when its claim FAILs; an ERROR, a hold or a skip proves nothing.
fn mutant_verdict(mutant: &Mutant, claim: &Claim, outcome: &claim::Outcome) -> Result<(), Failed> {
    match &outcome.verdict {
        Verdict::Fail(_) => Ok(()),
        Verdict::Error(f) => Err(Failed::from(format!(
            "with mutant `{}` the claim `{}` could not be measured (ERROR, not FAIL), so the mutant proves nothing:\n{}",
            mutant.name, claim.id, f.summary
        ))),
        Verdict::Pass => Err(Failed::from(format!(
            "mutant `{}` ({}) should make `{}` fail, but it held: {}",
            mutant.name, mutant.why, claim.id, outcome.evidence
        ))),
        Verdict::Skip(why) => Err(Failed::from(format!(
            "mutant `{}` names claim `{}`, which the design skips ({why}), so the mutant proves nothing",
            mutant.name, claim.id
        ))),
        // A suite measures each claim once; a flaky verdict only comes from repeats.
        Verdict::Flaky(f) => Err(Failed::from(format!(
            "with mutant `{}` the claim `{}` held {} of {} times: a mutant must break it every time",
            mutant.name, claim.id, f.held, f.runs
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::{Arguments, MachineTurn, Trial, filter_matching_nothing};
    use std::sync::mpsc;
    use std::time::Duration;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "stackproof-turn-test-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Takes the turn on a thread of its own; says on `done` when it has it,
    /// then holds it until told on the returned sender.
    fn taker(
        d: &std::path::Path,
        alone: bool,
        name: &'static str,
        done: mpsc::Sender<&'static str>,
    ) -> mpsc::Sender<()> {
        let (release, hold) = mpsc::channel::<()>();
        let d = d.to_path_buf();
        std::thread::spawn(move || {
            let t = MachineTurn::take(&d, alone).unwrap();
            done.send(name).unwrap();
            let _ = hold.recv();
            drop(t);
        });
        release
    }

    #[test]
    fn a_test_alone_waits_for_the_others_and_then_holds_off_new_ones() {
        let d = dir("alone");
        let (done, got) = mpsc::channel();
        let wait = Duration::from_millis(300);
        let first = taker(&d, false, "shared 1", done.clone());
        assert_eq!(got.recv_timeout(wait), Ok("shared 1"));
        // Beside another test's shared turn, one alone waits...
        let alone = taker(&d, true, "alone", done.clone());
        assert!(
            got.recv_timeout(wait).is_err(),
            "alone beside a shared turn"
        );
        // ...and a test asking after it does not get in first.
        let second = taker(&d, false, "shared 2", done.clone());
        assert!(got.recv_timeout(wait).is_err(), "a new test cut in");
        first.send(()).unwrap();
        assert_eq!(got.recv_timeout(wait * 3), Ok("alone"));
        assert!(
            got.recv_timeout(wait).is_err(),
            "a test beside the one alone"
        );
        alone.send(()).unwrap();
        assert_eq!(got.recv_timeout(wait * 3), Ok("shared 2"));
        second.send(()).unwrap();
        // Shared turns go side by side.
        let a = taker(&d, false, "a", done.clone());
        let b = taker(&d, false, "b", done.clone());
        let mut both = [
            got.recv_timeout(wait).unwrap(),
            got.recv_timeout(wait).unwrap(),
        ];
        both.sort();
        assert_eq!(both, ["a", "b"]);
        drop((a, b));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_filter_that_matches_no_test_here_is_refused_unless_aimed_at_another_suite() {
        let trials = || {
            vec![
                Trial::test("simple_web.issue.spof", || Ok(())),
                Trial::test("mutant::x::fails::simple_web.issue.spof", || Ok(())),
            ]
        };
        let args = |filter: &str, exact: bool| Arguments {
            filter: Some(filter.into()),
            exact,
            ..Arguments::default()
        };
        let refused = filter_matching_nothing(&args("typo", false), &trials(), "simple_web");
        assert!(
            refused.as_deref().is_some_and(
                |m| m.contains("matches `typo`") && m.contains("simple_web.issue.spof")
            ),
            "{refused:?}"
        );
        assert_eq!(
            filter_matching_nothing(&args("spof", false), &trials(), "simple_web"),
            None
        );
        assert!(filter_matching_nothing(&args("spof", true), &trials(), "simple_web").is_some());
        assert!(
            filter_matching_nothing(&args("simple_web.nope", false), &trials(), "simple_web")
                .is_some()
        );
        assert_eq!(
            filter_matching_nothing(
                &args("scale_up.lb.failover", false),
                &trials(),
                "simple_web"
            ),
            None
        );
    }
}
