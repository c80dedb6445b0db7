//! The test driver behind `cargo test --test <design>`: one test per claim,
//! named by its ID, plus one test per mutant proving its claim can fail.
//! A user's own crate drives its own design folder the same way:
//!
//! ```no_run
//! // tests/my_infra.rs, with `harness = false` for it in Cargo.toml
//! fn main() -> std::process::ExitCode {
//!     stackproof::suite::Suite::new(concat!(env!("CARGO_MANIFEST_DIR"), "/infra"))
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
use tokio::sync::Mutex;

use crate::claim::{self, Claim, Mutant, Verdict};
use crate::design::Design;
use crate::kinds::{Kind, Kinds};
use crate::report::{checklist_line, checklist_line_short};
use crate::stack::Stack;

/// The shared stack: `None` until the first claim needs it; an error is kept
/// so every later claim reports it instead of trying again.
type Shared = Arc<Mutex<Option<Result<Stack, String>>>>;

/// Runs built-in design `design`'s suite; call it from the suite's `main`.
pub fn main(design: &str) -> ExitCode {
    Suite::new(design).run()
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
    // Claims take the shared stack's lock for their whole run (they stop
    // hosts and restart services), so they go one at a time; mutants have
    // stacks of their own and run beside them. Two threads: the machines
    // this runs on have two cores. `--test-threads` overrides.
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

    let mut design = match Design::load_with(&suite.design, &suite.kinds) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("stackproof: {}", e.chain());
            return ExitCode::FAILURE;
        }
    };
    design.claims.extend(suite.extra);
    // The user's own files, mapped onto the run; the folder lives as long as the suite.
    let scratch = std::env::temp_dir().join(format!(
        "stackproof-suite-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _scratch = crate::mutant::TempDir(scratch.clone());
    match crate::config::apply(&design, &suite.configs, None, &suite.addresses, &scratch) {
        Ok(applied) => {
            for r in &applied.report {
                eprintln!("stackproof: {r}");
            }
            if let Some(dir) = applied.overlay {
                design = match design.with_overlay(dir) {
                    Ok(d) => d,
                    Err(e) => {
                        eprintln!("stackproof: {}", e.chain());
                        return ExitCode::FAILURE;
                    }
                };
            }
        }
        Err(e) => {
            eprintln!("stackproof: {}", e.chain());
            return ExitCode::FAILURE;
        }
    }
    let design = Arc::new(design);
    let claims = design.claims.clone();
    let mutants = design.mutants.clone();
    let shared: Shared = Arc::new(Mutex::new(None));
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
            .map(|c| claim_trial(c.clone(), design.clone(), runtime.clone(), shared.clone()))
            .collect()
    };
    let removals: Removals = Default::default();
    let mutant_trials: Vec<Trial> = mutants
        .into_iter()
        .map(|m| {
            mutant_trial(
                m,
                design.clone(),
                &claims,
                runtime.clone(),
                removals.clone(),
            )
        })
        .collect();
    let trials = interleave(claim_trials, mutant_trials);

    // With every trial in this process, each stack has the next one's
    // hosts made meanwhile; not under nextest (a process per test) nor
    // for a filtered run, which may start a single stack.
    let prewarm = (std::env::var_os("NEXTEST_RUN_ID").is_none() && args.filter.is_none())
        .then(crate::skeleton::Prewarm::start);
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(p) = prewarm {
        runtime.block_on(p.finish());
    }
    // Remove the shared stack inside the runtime, before it shuts down.
    runtime.block_on(async { shared.lock().await.take() });
    // Wait for the mutants' stacks still being removed.
    drop(std::mem::take(
        &mut *removals.lock().expect("removals lock"),
    ));
    conclusion.exit_code()
}

/// Claims and mutants taken turn about. The test threads take trials in
/// this order, and claims wait for the shared stack one at a time: with
/// every claim first, the second thread sat blocked on that stack for the
/// whole claims phase (scale_up: 40 s of 158). Alternating, one thread
/// mostly runs claims while the other starts mutants' stacks.
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

fn claim_trial(
    claim: Claim,
    design: Arc<Design>,
    rt: Arc<tokio::runtime::Runtime>,
    shared: Shared,
) -> Trial {
    let skipped = claim.skip.is_some();
    Trial::test(claim.id.clone(), move || {
        rt.block_on(async {
            let mut slot = shared.lock().await;
            // A stack whose fault could not be undone is no longer the design.
            if matches!(slot.as_ref(), Some(Ok(s)) if s.tainted()) {
                eprintln!(
                    "stackproof: the {} stack was left changed by a fault; starting a fresh one",
                    design.name
                );
                *slot = None;
            }
            if slot.is_none() {
                *slot = Some(start(&design, None).await);
            }
            let stack = match slot.as_ref().expect("just set") {
                Ok(s) => s,
                Err(e) => {
                    return Err(Failed::from(format!(
                        "the {} stack did not start:\n{e}",
                        design.name
                    )));
                }
            };
            let outcome = claim::run(stack, &claim).await;
            println!("{}", checklist_line(&outcome));
            if outcome.verdict.held() {
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
                let mut slot = shared.lock().await;
                if matches!(slot.as_ref(), Some(Ok(s)) if s.tainted()) {
                    *slot = None;
                }
                if slot.is_none() {
                    *slot = Some(start(&design, None).await);
                }
                let stack = match slot.as_ref().expect("just set") {
                    Ok(s) => s,
                    Err(e) => {
                        return Err(Failed::from(format!(
                            "the {} stack did not start:\n{e}",
                            design.name
                        )));
                    }
                };
                let outcome = claim::run(stack, claim).await;
                println!("{}", checklist_line(&outcome));
                if !outcome.verdict.held() && !outcome.verdict.skipped() {
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

/// Mutants' stacks still being removed while the next mutants run; the
/// suite waits for them before it exits.
type Removals = Arc<std::sync::Mutex<Vec<crate::docker::Removal>>>;

fn mutant_trial(
    mutant: Mutant,
    design: Arc<Design>,
    claims: &[Claim],
    rt: Arc<tokio::runtime::Runtime>,
    removals: Removals,
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
            let stack = start(&design, Some(&mutant)).await.map_err(|e| {
                Failed::from(format!("mutant `{}` ({}) did not start, so it proves nothing:\n{e}", mutant.name, mutant.why))
            })?;
            let outcome = claim::run(&stack, &claim).await;
            let removal = stack.remove_in_background();
            removals.lock().expect("removals lock").push(removal);
            println!("mutant {} ({}):\n{}", mutant.name, mutant.why, checklist_line_short(&outcome));
            match &outcome.verdict {
                Verdict::Broken(_) => Ok(()),
                Verdict::NotMeasured(f) => Err(Failed::from(format!(
                    "with mutant `{}` the claim `{}` could not be measured (ERROR, not FAIL), so the mutant proves nothing:\n{}",
                    mutant.name, claim.id, f.summary
                ))),
                Verdict::Held => Err(Failed::from(format!(
                    "mutant `{}` ({}) should make `{}` fail, but it held: {}",
                    mutant.name, mutant.why, claim.id, outcome.evidence
                ))),
                Verdict::Skipped(why) => Err(Failed::from(format!(
                    "mutant `{}` names claim `{}`, which the design skips ({why}), so the mutant proves nothing",
                    mutant.name, claim.id
                ))),
            }
        })
    })
}

async fn start(design: &Design, mutant: Option<&Mutant>) -> Result<Stack, String> {
    let stack = match mutant {
        Some(m) => design.start_mutant(m).await,
        None => design.start().await,
    }
    .map_err(|e| e.chain())?;
    eprintln!(
        "stackproof: {}{} up in {} ms (run {})",
        design.name,
        mutant
            .map(|m| format!(" [mutant {}]", m.name))
            .unwrap_or_default(),
        stack.up_time.as_millis(),
        stack.run.id
    );
    for note in &stack.notes {
        eprintln!("stackproof: note: {note}");
    }
    Ok(stack)
}
