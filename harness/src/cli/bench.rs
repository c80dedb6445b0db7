//! `stackproof bench`: a design's figures over several runs, with the
//! budgets beside them. Figures, never verdicts.

use std::process::ExitCode;

use crate::claim;
use crate::docker;
use crate::error::Error;
use crate::images;
use crate::report;
use crate::run::{self, Plan, Runner, Schedule};

/// Prints min/p50/p95/max of each figure over `runs` runs (of the claims
/// `only` names, or all). Figures, not verdicts: the budgets are compared
/// by a person, because timings on a shared machine are not fit to fail a
/// build.
pub async fn bench(
    design: &str,
    runs: usize,
    cold: bool,
    only: &[String],
    platform: Option<String>,
) -> Result<ExitCode, Error> {
    let plan = Plan::new(design)
        .with_only(only.to_vec())
        .on_platform(platform);
    let loaded = plan.clone().prepare().await?.design;
    let design = loaded.name.as_str();
    let docker = docker::connect().await?;
    if cold {
        images::remove_images(&docker).await?;
    }
    let image = images::ensure_server_image(&docker, &loaded.fixtures).await?;
    println!(
        "image {} from {}: {} in {:.1} s, {:.0} MiB",
        image.tag,
        image.base,
        if image.built {
            "built (cold)"
        } else {
            "present (warm)"
        },
        image.elapsed.as_secs_f64(),
        image.size as f64 / 1048576.0
    );
    let mut figures = Figures::default();
    // A later run's stack starts on hosts made while the previous one ran,
    // as in a suite: "topology up, a later stack" is that figure.
    let prewarm = (runs > 1).then(crate::skeleton::Prewarm::start);
    for i in 0..runs {
        figures.one_run(plan.clone().prepare().await?, i).await?;
        // docker-compose starting the same hosts, on an idle engine as ours did.
        match crate::compose::hosts_up(&loaded, &image.tag).await {
            Ok(up) => figures.record(COMPOSE_HOSTS, up.took.as_millis() as f64),
            Err(why) if i == 0 => println!("docker-compose comparison not measured: {why}"),
            Err(_) => {}
        }
    }
    if let Some(p) = prewarm {
        p.finish().await;
    }
    println!("{design}, {runs} run(s):");
    let failures = figures.failures;
    figures.print(design);
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The figures of every run, by name, in the order first seen.
#[derive(Default)]
struct Figures {
    values: Vec<(String, Vec<f64>)>,
    /// Claims that did not hold, over all runs.
    failures: usize,
    /// Each claim's (id, runs it held in, runs it ran in): the soak's verdict.
    held: Vec<(String, usize, usize)>,
}

impl Figures {
    fn record(&mut self, name: &str, value: f64) {
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(value),
            None => self.values.push((name.to_string(), vec![value])),
        }
    }

    /// Run `i`: a stack started, the claims run on it, and removed.
    async fn one_run(&mut self, prepared: run::Prepared, i: usize) -> Result<(), Error> {
        let runner = Runner::new(prepared);
        let up = std::cell::Cell::new((0.0, 0.0));
        let ran = runner
            .run(Schedule::InTurn, |e| {
                if let run::Event::Up(stack) = e {
                    if i == 0 {
                        // Figures through the probe host and from this machine
                        // differ a little: say which these are (STACKPROOF_TRAFFIC).
                        println!("claims' traffic from {}", stack.client.net.origin());
                    }
                    up.set((
                        stack.up_time.as_millis() as f64,
                        stack.hosts_up.as_millis() as f64,
                    ));
                }
            })
            .await?;
        let (up_ms, hosts_ms) = up.get();
        self.record("topology up, all services ready (ms)", up_ms);
        if i > 0 {
            // The same figure for a stack that is not the process's first.
            self.record("topology up, a later stack of the process (ms)", up_ms);
        }
        self.record("hosts created and started, no service yet (ms)", hosts_ms);
        let stack = ran.stack;
        drop(ran.removals);
        let mut claims_ms = 0.0;
        for o in &ran.outcomes {
            self.count(o, i);
            claims_ms += o.millis as f64;
            self.record(&format!("{} (ms)", o.id), o.millis as f64);
            for (name, value) in &o.figures {
                self.record(&format!("  {name}"), *value);
            }
        }
        self.record(WHOLE_CHECK, up_ms + claims_ms);
        self.record(
            "memory of the running topology (MiB)",
            stack.memory_bytes().await? as f64 / 1048576.0,
        );
        let t = std::time::Instant::now();
        drop(stack);
        self.record("teardown (ms)", t.elapsed().as_millis() as f64);
        Ok(())
    }

    /// Counts one outcome of run `i` in the soak; prints it when it did not hold.
    fn count(&mut self, o: &claim::Outcome, i: usize) {
        let (held, ran) = (o.verdict.passed() as usize, !o.verdict.skipped() as usize);
        match self.held.iter_mut().find(|(id, ..)| *id == o.id) {
            Some((_, h, n)) => {
                *h += held;
                *n += ran;
            }
            None => self.held.push((o.id.clone(), held, ran)),
        }
        if !o.verdict.passed() && !o.verdict.skipped() {
            self.failures += 1;
            println!("run {}: {}", i + 1, report::checklist_line(o));
        }
    }

    /// The table, the soak, and the budgets beside the figures they concern.
    fn print(mut self, design: &str) {
        println!(
            "  {:<52} {:>9} {:>9} {:>9} {:>9}",
            "figure", "min", "p50", "p95", "max"
        );
        for (name, v) in &mut self.values {
            v.sort_by(|a, b| a.total_cmp(b));
            println!(
                "  {name:<52} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                v[0],
                percentile(v, 50.0),
                percentile(v, 95.0),
                v[v.len() - 1]
            );
        }
        println!("claims held, of the runs they ran in:");
        for (id, h, n) in &self.held {
            println!(
                "  {id:<52} {h:>3}/{n}{}",
                if h < n { "  did not always hold" } else { "" }
            );
        }
        // Figures, not a verdict.
        let mut header = false;
        for (_, prefix, budget, note) in BUDGETS
            .iter()
            .filter(|(d, ..)| d.is_empty() || *d == design)
        {
            for (name, v) in self
                .values
                .iter()
                .filter(|(n, _)| n.trim_start().starts_with(prefix))
            {
                if !header {
                    println!("budgets (the p50 beside each):");
                    header = true;
                }
                let median = percentile(v, 50.0);
                println!(
                    "  {:<52} {median:>9.1} {:>9} {budget:>9.0}  {note}",
                    name.trim_start(),
                    if median <= *budget { "within" } else { "over" }
                );
            }
        }
    }
}

/// The `pct` percentile of sorted, non-empty `v` (the library's one rule).
fn percentile(v: &[f64], pct: f64) -> f64 {
    report::percentile(v, pct).unwrap_or(f64::NAN)
}

/// The bench's figure for a whole warm `check`: topology up, then every claim.
const WHOLE_CHECK: &str = "whole check: up, then every claim (ms)";
/// docker-compose's side of the comparison (see `crate::compose`).
const COMPOSE_HOSTS: &str = "docker-compose up -d, the same hosts, no service (ms)";

/// The performance budgets (design, figure name prefix, budget, what it
/// says), printed beside the measured medians. An empty design is any.
const BUDGETS: &[(&str, &str, f64, &str)] = &[
    (
        "scale_up",
        WHOLE_CHECK,
        15_000.0,
        "warm check under 15 s (docs/benchmarks.md: what it takes on 2 cores)",
    ),
    (
        "scale_up",
        "topology up",
        2_100.0,
        "under half of docker-compose's 4.1-4.2 s with services and healthchecks (hosts alone: see the compose line)",
    ),
    (
        "scale_up",
        "memory of the running topology",
        1_536.0,
        "under 1.5 GiB",
    ),
    (
        "",
        "failover outage",
        1_000.0,
        "a load-balancer failover under 1 s",
    ),
];
