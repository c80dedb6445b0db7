//! The one runner. Every front end (`check`, `check --stacks`, `--repeat`,
//! `grade`, `mutants`, `bench`, the suites, a user's crate) hands it a
//! [`Prepared`] run and chooses a [`Schedule`] and a sink for [`Event`]s;
//! it does everything around the claims: starting stacks (one, several at
//! once, or a pool libtest's threads take from), replacing a stack a claim
//! left changed, laying a mutant or a graded submission on a running
//! stack or starting one for it, folding repeated runs into one verdict
//! each, and removing what it started. Nothing else starts a stack or runs a claim (a test in lib.rs
//! says so).

use std::sync::Mutex;

use super::{Event, Prepared};
use crate::claim::{Claim, Outcome};
use crate::design::Design;
use crate::docker::Removal;
use crate::error::Result;
use crate::mutant::Mutant;
use crate::stack::{Fault, Stack};

/// How the claims are spread over time and stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// One after another on one stack; a stack a claim left changed is
    /// replaced for the claims after it.
    InTurn,
    /// Shared among this many stacks, all started before any claim runs.
    OnStacks(u8),
    /// Every claim this many times on one stack, folded into one verdict
    /// each (FLAKY when it both held and did not).
    Repeated(u16),
}

/// What a run ended with: one outcome per claim in the claims' order, the
/// stack the last claim ran on (for its versions and run id), and the
/// removals of the stacks it replaced (dropping them waits for them).
pub struct Ran {
    pub outcomes: Vec<Outcome>,
    pub stack: Stack,
    pub removals: Vec<Removal>,
}

/// How a user's files (a submission) were run: on a running stack of the
/// design (what changed), or on a fresh stack of their own (why).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GradedOn {
    InPlace(String),
    Fresh(String),
}

impl std::fmt::Display for GradedOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GradedOn::InPlace(what) if what.is_empty() => {
                write!(
                    f,
                    "in place on a running stack (nothing it serves differs from the design's)"
                )
            }
            GradedOn::InPlace(what) => write!(f, "in place on a running stack ({what})"),
            GradedOn::Fresh(why) => write!(f, "on a fresh stack ({why})"),
        }
    }
}

/// What [`Runner::users_files`] ended with: one outcome per claim, where
/// it ran, the run's id, ms until the claims could start (laying the
/// files, or a fresh start) and the image.
pub struct UsersRun {
    pub outcomes: Vec<Outcome>,
    pub on: GradedOn,
    pub run: String,
    pub up_ms: u128,
    pub image: String,
}

/// How a mutant was run: on a running stack of the design (what changed),
/// or on a fresh stack of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutantPath {
    InPlace(String),
    Fresh,
}

/// Runs a prepared design's claims (see the module's comment).
pub struct Runner {
    prepared: Prepared,
    keep: bool,
    show_waits: bool,
    notes: Box<dyn Fn(String) + Send + Sync>,
    /// Stacks of the design no claim is using now (the libtest pool).
    idle: Mutex<Vec<Stack>>,
    /// Why the design's stack did not start, once it did not: every later
    /// asker is told at once instead of starting it again.
    failed: Mutex<Option<String>>,
    /// Stacks being removed while the run goes on.
    removals: Mutex<Vec<Removal>>,
    /// What laying a user's files and putting the design's back took, by
    /// what they changed (ms), and the pool's last fresh start: files that
    /// took longer in place than a fresh start go fresh (same verdicts).
    lay_costs: Mutex<std::collections::BTreeMap<String, u128>>,
    fresh_ms: Mutex<Option<u128>>,
}

impl Runner {
    pub fn new(prepared: Prepared) -> Runner {
        Runner {
            prepared,
            keep: false,
            show_waits: false,
            notes: Box::new(|_| {}),
            idle: Mutex::default(),
            failed: Mutex::default(),
            removals: Mutex::default(),
            lay_costs: Mutex::default(),
            fresh_ms: Mutex::default(),
        }
    }

    /// Keeps every stack it starts after the run (`check --keep`).
    pub fn keeping(mut self, keep: bool) -> Runner {
        self.keep = keep;
        self
    }

    /// At a terminal, shows each claim with what it waits for meanwhile
    /// ("scale_up.lb.failover: the VIP to move from lb-1 to lb-2").
    pub fn showing_waits(mut self, show: bool) -> Runner {
        self.show_waits = show;
        self
    }

    /// Where the pool's notes go (a stack started or discarded), for the
    /// suites, whose claims take stacks one test at a time.
    pub fn with_notes(mut self, notes: impl Fn(String) + Send + Sync + 'static) -> Runner {
        self.notes = Box::new(notes);
        self
    }

    /// The run it was made for: the design, its claims, the user's files.
    pub fn prepared(&self) -> &Prepared {
        &self.prepared
    }

    /// Runs every claim of the prepared run on `schedule`, telling `sink`
    /// as it goes: [`Event::Up`] once the first stack is up, then each
    /// outcome in the claims' order. An error is the first stack's start.
    pub async fn run(&self, schedule: Schedule, sink: impl Fn(Event<'_>)) -> Result<Ran> {
        let claims = &self.prepared.claims;
        match schedule {
            Schedule::InTurn => {
                let stack = self.start().await?;
                sink(Event::Up(&stack));
                Ok(self
                    .in_turn(&self.prepared.design, stack, claims, &sink)
                    .await)
            }
            Schedule::Repeated(times) => {
                let mut stack = self.start().await?;
                sink(Event::Up(&stack));
                let (mut runs, mut removals) = (Vec::new(), Vec::new());
                for r in 1..=times {
                    let ran = self
                        .in_turn(&self.prepared.design, stack, claims, &|_| {})
                        .await;
                    stack = ran.stack;
                    removals.extend(ran.removals);
                    let held = ran.outcomes.iter().filter(|o| o.verdict.passed()).count();
                    sink(Event::Note(format!(
                        "run {r} of {times}: {held} of {} held",
                        claims.len()
                    )));
                    runs.push(ran.outcomes);
                }
                let outcomes = crate::repeat::fold_repeats(runs);
                for o in &outcomes {
                    sink(Event::Ended(o));
                }
                Ok(Ran {
                    outcomes,
                    stack,
                    removals,
                })
            }
            Schedule::OnStacks(n) => {
                // Every stack starts at once, and all are up before any
                // claim runs (see on_stacks).
                let others = (1..n.max(1)).map(|_| self.start());
                let (first, others) =
                    futures::join!(self.start(), futures::future::join_all(others));
                let first = first?;
                sink(Event::Up(&first));
                let (outcomes, more) =
                    super::stacks::on_stacks(&first, others, claims, &sink).await;
                let removals = more.into_iter().map(Stack::remove_in_background).collect();
                Ok(Ran {
                    outcomes,
                    stack: first,
                    removals,
                })
            }
        }
    }

    /// Starts a stack of the prepared design (kept when asked).
    async fn start(&self) -> Result<Stack> {
        self.start_of(&self.prepared.design).await
    }

    /// Starts a stack of `design` (kept when asked).
    async fn start_of(&self, design: &Design) -> Result<Stack> {
        let mut stack = design.start().await?;
        if self.keep {
            stack.keep();
        }
        Ok(stack)
    }

    /// Runs `claims` one after another on `stack`. A claim that leaves the
    /// stack changed (a fault it could not undo) hands the claims after it
    /// a fresh stack of `design`, since they must measure it; when none
    /// starts, they are not run, each an ERROR saying why.
    async fn in_turn(
        &self,
        design: &Design,
        mut stack: Stack,
        claims: &[Claim],
        sink: &impl Fn(Event<'_>),
    ) -> Ran {
        let mut outcomes = Vec::with_capacity(claims.len());
        let mut removals = Vec::new();
        for (i, c) in claims.iter().enumerate() {
            let o = self.run_one(&stack, c).await;
            sink(Event::Ended(&o));
            outcomes.push(o);
            if !stack.tainted() || i + 1 == claims.len() {
                continue;
            }
            match self.start_of(design).await {
                Ok(fresh) => {
                    sink(Event::Note(format!(
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
                        sink(Event::Ended(&o));
                        outcomes.push(o);
                    }
                    break;
                }
            }
        }
        Ran {
            outcomes,
            stack,
            removals,
        }
    }

    /// One claim on `stack`: with a spinner at a terminal when asked.
    async fn run_one(&self, stack: &Stack, c: &Claim) -> Outcome {
        use std::io::IsTerminal;
        if self.show_waits && std::io::stdout().is_terminal() {
            showing_waits(stack, c).await
        } else {
            super::one_claim(stack, c, &Default::default()).await
        }
    }

    /// Runs `claim` on a stack of the pool (an idle one, or a new one) and
    /// gives the stack back; the error is why no stack could be had.
    pub async fn claim(&self, claim: &Claim) -> std::result::Result<Outcome, String> {
        let stack = self.take().await?;
        let outcome = super::one_claim(&stack, claim, &Default::default()).await;
        self.give_back(stack);
        Ok(outcome)
    }

    /// Runs `claim` with `mutant` laid over the design: on a stack of the
    /// pool when `in_place` allows it and the stack can take it (it keeps
    /// the design's topology: see [`Stack::in_place`]), otherwise on a
    /// fresh stack of its own. The error says why it proves nothing.
    pub async fn mutant(
        &self,
        mutant: &Mutant,
        claim: &Claim,
        in_place: bool,
    ) -> std::result::Result<(Outcome, MutantPath), String> {
        let design = &self.prepared.design;
        if in_place && self.may_run_in_place(mutant) {
            // The mutant's files first: a patch that does not apply must not cost a stack.
            let fixtures = mutant
                .apply(design.fixtures.clone())
                .map_err(|e| e.chain())?;
            let stack = self.take().await?;
            match stack.in_place(mutant, fixtures).await {
                Ok(Some(laid)) => {
                    if let Err(e) = stack.apply(Fault::Mutant(&laid)).await.map(drop) {
                        let undone = stack.restore_faults().await;
                        self.give_back(stack);
                        return Err(format!(
                            "mutant `{}` ({}) could not be laid on the running stack, so it proves nothing:\n{}{}",
                            mutant.name,
                            mutant.why,
                            e.chain(),
                            undone
                                .err()
                                .map(|u| format!(
                                    "\nputting the design's files back failed too: {}",
                                    u.chain()
                                ))
                                .unwrap_or_default()
                        ));
                    }
                    // The claim runner undoes the mutant with the claim's own faults.
                    let outcome = super::one_claim(&stack, claim, &Default::default()).await;
                    self.give_back(stack);
                    return Ok((outcome, MutantPath::InPlace(laid.words())));
                }
                // Only a fresh start gives what this mutant is.
                Ok(None) => self.give_back(stack),
                Err(e) => {
                    self.give_back(stack);
                    return Err(format!(
                        "mutant `{}` ({}): its files could not be compared with the running design's, so it proves nothing:\n{}",
                        mutant.name,
                        mutant.why,
                        e.chain()
                    ));
                }
            }
        }
        let stack = design.start_mutant(mutant).await.map_err(|e| {
            format!(
                "mutant `{}` ({}) did not start, so it proves nothing:\n{}",
                mutant.name,
                mutant.why,
                e.chain()
            )
        })?;
        self.started(&stack, Some(mutant));
        let outcome = super::one_claim(&stack, claim, &Default::default()).await;
        self.removals
            .lock()
            .expect("removals lock")
            .push(stack.remove_in_background());
        Ok((outcome, MutantPath::Fresh))
    }

    /// Runs `theirs` (this runner's design with a user's files laid over
    /// it: a submission) on a stack of the pool when `in_place` allows it
    /// and the stack can take their files ([`Stack::taking`]): laid as the
    /// stack's base, every claim run in turn, the design's files put back.
    /// Otherwise, when their servers refuse them in place (a fresh start
    /// says so in its own words), or when the same changes took longer in
    /// place than a fresh start last time, on a fresh stack of theirs. Either way the
    /// claims after one that left the stack changed run on a fresh stack of
    /// theirs, as [`Schedule::InTurn`] does. The error is a fresh start's.
    pub async fn users_files(
        &self,
        theirs: &Prepared,
        in_place: bool,
        sink: impl Fn(Event<'_>),
    ) -> Result<UsersRun> {
        let why_fresh = if in_place {
            match self.lay_users_files(theirs).await {
                Ok((stack, what, laid_ms)) => {
                    sink(Event::Up(&stack));
                    let (run, image) = (stack.run.id.clone(), stack.image.tag.clone());
                    let ran = self
                        .in_turn(&theirs.design, stack, &theirs.claims, &sink)
                        .await;
                    if let Some(put_back_ms) = self.put_back(ran.stack, ran.removals).await {
                        self.lay_costs
                            .lock()
                            .expect("costs lock")
                            .insert(what.clone(), laid_ms + put_back_ms);
                    }
                    return Ok(UsersRun {
                        outcomes: ran.outcomes,
                        on: GradedOn::InPlace(what),
                        run,
                        up_ms: laid_ms,
                        image,
                    });
                }
                Err(why) => why,
            }
        } else {
            "--fresh".to_string()
        };
        let stack = self.start_of(&theirs.design).await?;
        *self.fresh_ms.lock().expect("costs lock") = Some(stack.up_time.as_millis());
        sink(Event::Up(&stack));
        let (run, image, up_ms) = (
            stack.run.id.clone(),
            stack.image.tag.clone(),
            stack.up_time.as_millis(),
        );
        let ran = self
            .in_turn(&theirs.design, stack, &theirs.claims, &sink)
            .await;
        let mut removals = self.removals.lock().expect("removals lock");
        removals.extend(ran.removals);
        removals.push(ran.stack.remove_in_background());
        Ok(UsersRun {
            outcomes: ran.outcomes,
            on: GradedOn::Fresh(why_fresh),
            run,
            up_ms,
            image,
        })
    }

    /// A stack of the pool with `theirs`'s files laid as its base, what
    /// changed in words (also the key of its cost) and the ms laying took; or why only a fresh start
    /// gives what they are.
    async fn lay_users_files(
        &self,
        theirs: &Prepared,
    ) -> std::result::Result<(Stack, String, u128), String> {
        let fixtures = theirs.design.fixtures.clone();
        let changed = fixtures.users_files().map_err(|e| e.chain())?;
        let stack = self.take().await?;
        let started = std::time::Instant::now();
        let files = match stack.taking(&changed, fixtures).await {
            Ok(Ok(files)) => files,
            Ok(Err(why)) => {
                self.give_back(stack);
                return Err(why);
            }
            Err(e) => {
                self.give_back(stack);
                return Err(format!(
                    "their files could not be compared with the running design's: {}",
                    e.chain().lines().next().unwrap_or("")
                ));
            }
        };
        // Verdicts are the same either way: the quicker way is taken.
        let fresh_ms = *self.fresh_ms.lock().expect("costs lock");
        let cost = self
            .lay_costs
            .lock()
            .expect("costs lock")
            .get(&files.words())
            .copied();
        if let (Some(fresh_ms), Some(cost)) = (fresh_ms, cost)
            && cost > fresh_ms
        {
            self.give_back(stack);
            return Err(format!(
                "laying {} and putting the design's back took {cost} ms last time, a fresh start {fresh_ms} ms",
                files.words()
            ));
        }
        if let Err(e) = stack.lay_base(&files).await {
            let _ = stack.unlay_base().await;
            self.give_back(stack);
            return Err(format!(
                "a server refused them on the running stack ({}); a fresh start says why in its own words",
                e.chain().lines().next().unwrap_or("")
            ));
        }
        Ok((stack, files.words(), started.elapsed().as_millis()))
    }

    /// After a run on a laid base: the pool's stack, its design's files put
    /// back, returns to the pool (unless it cannot be put back); a fresh
    /// stack a claim's leftovers made necessary goes, as do the replaced.
    /// Returns the ms putting the design's files back took, when it did.
    async fn put_back(&self, stack: Stack, replaced: Vec<Removal>) -> Option<u128> {
        self.removals
            .lock()
            .expect("removals lock")
            .extend(replaced);
        if !stack.has_base() {
            self.removals
                .lock()
                .expect("removals lock")
                .push(stack.remove_in_background());
            return None;
        }
        let started = std::time::Instant::now();
        let put_back = stack.unlay_base().await;
        let ms = started.elapsed().as_millis();
        if let Err(e) = &put_back {
            tracing::warn!("could not put the design's files back: {}", e.chain());
        }
        self.give_back(stack);
        put_back.ok().map(|()| ms)
    }

    /// Whether `mutant` keeps the design's topology, so a running stack of
    /// the design may take it (the stack decides: [`Stack::in_place`]).
    pub fn may_run_in_place(&self, mutant: &Mutant) -> bool {
        let design = &self.prepared.design;
        mutant.patched_files().is_some()
            && mutant
                .apply(design.fixtures.clone())
                .and_then(|f| crate::spec::Parts::read(&f))
                .is_ok_and(|theirs| {
                    crate::stack::in_place::same_topology(
                        &design.parts.spec,
                        &design.parts.services,
                        &theirs,
                    )
                })
    }

    /// An idle stack of the pool, or a new one; a start that failed is
    /// remembered, and every later asker is told why.
    async fn take(&self) -> std::result::Result<Stack, String> {
        let name = &self.prepared.design.name;
        let not_started = |e: &str| format!("the {name} stack did not start:\n{e}");
        if let Some(e) = self.failed.lock().expect("pool lock").clone() {
            return Err(not_started(&e));
        }
        if let Some(s) = self.idle.lock().expect("pool lock").pop() {
            return Ok(s);
        }
        match self.start().await {
            Ok(stack) => {
                self.started(&stack, None);
                *self.fresh_ms.lock().expect("costs lock") = Some(stack.up_time.as_millis());
                Ok(stack)
            }
            Err(e) => {
                let e = e.chain();
                *self.failed.lock().expect("pool lock") = Some(e.clone());
                Err(not_started(&e))
            }
        }
    }

    /// Back in the pool, unless a fault left it changed (then it goes).
    fn give_back(&self, stack: Stack) {
        if stack.tainted() {
            (self.notes)(format!(
                "the {} stack was left changed by a fault; the next test gets a fresh one",
                self.prepared.design.name
            ));
            self.removals
                .lock()
                .expect("removals lock")
                .push(stack.remove_in_background());
            return;
        }
        self.idle.lock().expect("pool lock").push(stack);
    }

    fn started(&self, stack: &Stack, mutant: Option<&Mutant>) {
        (self.notes)(format!(
            "{}{} up in {} ms (run {})",
            self.prepared.design.name,
            mutant
                .map(|m| format!(" [mutant {}]", m.name))
                .unwrap_or_default(),
            stack.up_time.as_millis(),
            stack.run.id
        ));
        for note in &stack.notes {
            let note = self.prepared.note_in_users_terms(note);
            (self.notes)(format!("note: {note}"));
        }
    }

    /// Removes the pool's stacks and waits for every removal (call it
    /// inside the runtime, before it shuts down).
    pub fn finish(&self) {
        drop(std::mem::take(&mut *self.idle.lock().expect("pool lock")));
        drop(std::mem::take(
            &mut *self.removals.lock().expect("removals lock"),
        ));
    }
}

/// Runs one claim with a spinner showing what it waits for.
async fn showing_waits(stack: &Stack, c: &Claim) -> Outcome {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
            .expect("static template"),
    );
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let recorder = crate::recorder::Recorder::default();
    let run = super::one_claim(stack, c, &recorder);
    tokio::pin!(run);
    let outcome = loop {
        tokio::select! {
            o = &mut run => break o,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                let waiting = recorder.waiting();
                spinner.set_message(if waiting.is_empty() {
                    c.id.clone()
                } else {
                    format!("{}: waiting for {waiting}", c.id)
                });
            }
        }
    };
    spinner.finish_and_clear();
    outcome
}
