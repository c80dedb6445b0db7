//! `stackproof`: the checklist and CI gate, a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stackproof::catalogue;
use stackproof::claim;
use stackproof::design::Design;
use stackproof::docker;
use stackproof::error::Error;
use stackproof::fixtures::Fixtures;
use stackproof::images;
use stackproof::report::{self, RunReport};

#[derive(Parser)]
#[command(
    name = "stackproof",
    version,
    about = "Proves a web infrastructure design against real containers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a design and check every claim: one line per claim with what was measured.
    Check {
        /// A built-in design (simple_web, distributed, secured_monitored,
        /// scale_up, simple_web_nginx) or a design folder (`./my_design`).
        design: String,
        /// Your own fixtures folder, laid over the built-in one (only the files you replace).
        #[arg(long, env = "STACKPROOF_FIXTURES")]
        fixtures: Option<PathBuf>,
        /// Run the design with one of its mutants laid over it, to see what it breaks.
        #[arg(long)]
        mutant: Option<String>,
        /// Check only these claims (repeatable); default: all.
        #[arg(long = "claim")]
        claims: Vec<String>,
        /// Write a JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a JUnit XML report here (for CI systems).
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write a self-contained HTML report here: the topology coloured by
        /// verdict, every claim with its evidence, a timeline for every fault.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Write a Markdown summary here (for CI pages: `--markdown "$GITHUB_STEP_SUMMARY"`),
        /// with the topology coloured by verdict.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Keep the containers afterwards, for inspection (remove with `stackproof sweep --all`).
        #[arg(long)]
        keep: bool,
        /// Start the design this many times and share the claims out among
        /// the stacks (each claim still runs alone on its stack). Pays on a
        /// machine with a core or more per stack; timing claims need one.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
        stacks: u8,
        /// Your own configuration file, as it is on your server, mapped onto the
        /// run (repeatable): KIND=PATH or HOST:KIND=PATH, KIND one of haproxy,
        /// nginx, apache, keepalived, mariadb, php-fpm, prometheus, iptables.
        #[arg(long = "config", value_name = "[HOST:]KIND=PATH")]
        configs: Vec<stackproof::config::ConfigArg>,
        /// An install script of yours that writes a server's configuration
        /// (KIND=PATH, e.g. haproxy=./install_lb.sh): run in a throwaway host
        /// with the package installed and no network, package and service
        /// commands made harmless; the file it wrote is checked as --config.
        #[arg(long = "script", value_name = "KIND=PATH")]
        scripts: Vec<stackproof::config::ConfigArg>,
        /// Your domain, when your files do not name it in a certificate path,
        /// redirect or Host rule (it becomes the run's foobar.com).
        #[arg(long)]
        domain: Option<String>,
        /// What an address in your files is in the design (repeatable), for
        /// files that only use addresses (firewall rules, scrape targets):
        /// ADDRESS=HOST, e.g. 10.0.0.5=lb-1. Addresses in HAProxy `server`
        /// lines and keepalived peers are learned without it.
        #[arg(long = "address", value_name = "ADDRESS=HOST")]
        addresses: Vec<stackproof::config::AddressArg>,
    },
    /// Grade a class: one run of a design per submission folder, with the files
    /// found in it by name (haproxy.cfg), mapped as --config does; a checklist
    /// per submission and a table (submission x claim) as Markdown and CSV.
    Grade {
        /// The design the submissions implement.
        design: String,
        /// One folder per submission.
        #[arg(required = true)]
        submissions: Vec<PathBuf>,
        /// Where to write summary.md, summary.csv and each submission's checklist.
        #[arg(long, default_value = "grades")]
        out: PathBuf,
        /// How many submissions to run at once (default: what memory and cores allow).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Merge the JSON reports of many runs (a CI matrix's shards) into one
    /// HTML page, one JUnit file and one Markdown summary; exits as the
    /// worst run did (0 held, 1 a claim broke, 2 one was not measured).
    Merge {
        /// Reports written by `check --json`.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write one self-contained HTML page with every run.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Write one JUnit file (a <testsuites> of every run).
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write one Markdown summary (GitHub's step summary).
        #[arg(long)]
        markdown: Option<PathBuf>,
    },
    /// Draw a design's topology without running anything.
    Graph {
        /// A built-in design or a design folder.
        design: String,
        /// mermaid (GitHub renders it in Markdown), dot (Graphviz) or svg.
        #[arg(long, default_value = "mermaid", value_parser = ["mermaid", "dot", "svg"])]
        format: String,
    },
    /// The check kinds a claims file can use: what each proves, its parameters, an example.
    Kinds {
        /// One kind to explain (default: all).
        name: Option<String>,
    },
    /// Write a small working design folder to start from: a copy of a
    /// built-in design with its claim IDs renamed (`stackproof check <folder>` runs it).
    New {
        /// The folder to create; its name becomes the design's name and claim-ID prefix.
        folder: PathBuf,
        /// The built-in design to start from.
        #[arg(long, default_value = "simple_web_nginx")]
        from: String,
    },
    /// List the designs, or one design's claims and mutants.
    List {
        /// A design to list the claims of.
        design: Option<String>,
    },
    /// Run every mutant of a design against every claim: a matrix (mutant x
    /// claim) and the mutation score. Takes a few minutes per design.
    Mutants {
        /// The design.
        design: String,
    },
    /// Build the images now (a check builds them when missing); save or load
    /// them for a CI cache; remove images of older recipes.
    Images {
        /// Load images saved with `--save` from this folder first.
        #[arg(long)]
        load: Option<PathBuf>,
        /// Save the current image (and its base) into this folder, one tar.
        #[arg(long)]
        save: Option<PathBuf>,
        /// Remove server images of older recipes (about 1 GB each).
        #[arg(long)]
        prune: bool,
    },
    /// Measure a design: image step, time to ready, each claim, memory, teardown (min/median/max).
    Bench {
        /// The design to measure.
        design: String,
        /// How many times to start the design and run its claims.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Remove the images first, to measure a cold build (takes about a minute more).
        #[arg(long)]
        cold: bool,
    },
    /// Remove what killed runs left behind (`--all`: every stackproof container and network).
    Sweep {
        /// Also remove runs whose process still lives.
        #[arg(long)]
        all: bool,
    },
}

/// Prints a line for a listing command; when the reader has gone (`| head`),
/// stops quietly instead of panicking on the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// As [`out!`], without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        docker::clean_up_on_interrupt();
        match run(cli.command).await {
            Ok(code) => code,
            Err(_) if docker::interrupted() => {
                // The interrupt handler is removing the run and will exit(130).
                std::future::pending().await
            }
            Err(e) => {
                eprintln!("stackproof: {}", e.chain());
                ExitCode::from(2)
            }
        }
    })
}

async fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Check {
            design,
            fixtures,
            mutant,
            claims,
            json,
            junit,
            html,
            markdown,
            keep,
            stacks,
            configs,
            scripts,
            domain,
            addresses,
        } => {
            let users = UserFiles {
                configs,
                scripts,
                domain,
                addresses,
                mutant,
            };
            let out = Outputs {
                json,
                junit,
                html,
                markdown,
            };
            check(&design, fixtures, &claims, out, keep, stacks, users).await
        }
        Command::Grade {
            design,
            submissions,
            out,
            jobs,
        } => grade(&design, &submissions, &out, jobs).await,
        Command::Merge {
            reports,
            html,
            junit,
            markdown,
        } => {
            use stackproof::merge;
            let saved = merge::read(&reports)?;
            if let Some(p) = &html {
                merge::write(p, &merge::html(&saved)?)?;
            }
            if let Some(p) = &junit {
                merge::write(p, &merge::junit(&saved))?;
            }
            if let Some(p) = &markdown {
                merge::write(p, &merge::markdown(&saved)?)?;
            }
            for r in &saved {
                let (h, b, e, s) = merge::counts(&r.claims);
                out!(
                    "{}: {h} held, {b} broken, {e} not measured, {s} skipped",
                    r.design
                );
            }
            Ok(ExitCode::from(merge::exit_code(&saved)))
        }
        Command::Graph { design, format } => {
            let loaded = Design::load(&design)?;
            let none = Default::default();
            out_raw!(
                "{}",
                match format.as_str() {
                    "dot" => stackproof::graph::dot(&loaded, &none),
                    "svg" => format!(
                        "{}\n",
                        stackproof::html::topology_standalone(&loaded, &none)
                    ),
                    _ => stackproof::graph::mermaid(&loaded, &none),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Kinds { name } => {
            let kinds = stackproof::kinds::Kinds::builtin();
            match name {
                None => {
                    out!(
                        "{} check kinds (`stackproof kinds <name>` explains one):\n",
                        kinds.iter().count()
                    );
                    for k in kinds.iter() {
                        let first = k.doc.split(". ").next().unwrap_or(k.doc);
                        out!("  {:<30} {}", k.name, first.trim_end_matches('.'));
                    }
                }
                Some(n) => {
                    let kind = kinds.get(&n).ok_or_else(|| Error::Unknown {
                        kind: "check kind",
                        name: n.clone(),
                        known: kinds.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
                    })?;
                    out_raw!("{}", kinds.only(kind.name).markdown());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::New { folder, from } => {
            let written = stackproof::design::new_design(&folder, &from)?;
            out!(
                "wrote {} ({} files, from {from}); run it with:\n  stackproof check {}",
                folder.display(),
                written,
                folder.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::List { design: None } => {
            for d in catalogue::designs() {
                let loaded = Design::load(&d)?;
                out!(
                    "{d:<20} {} claims, {} mutants",
                    loaded.claims.len(),
                    loaded.mutants.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { design: Some(d) } => {
            let loaded = Design::load(&d)?;
            for c in &loaded.claims {
                out!(
                    "{:<48} {}\n{:<48} {}: {}{}",
                    c.id,
                    c.says,
                    "",
                    c.kind,
                    c.proves,
                    c.skip
                        .as_ref()
                        .map(|r| format!(" (SKIPPED: {r})"))
                        .unwrap_or_default()
                );
            }
            for m in &loaded.mutants {
                out!("mutant {:<41} fails {} ({})", m.name, m.fails, m.why);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Mutants { design } => mutants_matrix(&design).await,
        Command::Images { load, save, prune } => {
            let docker = docker::connect().await?;
            let fixtures = Fixtures::from_env()?;
            if let Some(dir) = load {
                let files = images::load(&docker, &dir).await?;
                println!("loaded {} file(s) from {}", files.len(), dir.display());
            }
            let r = images::ensure_server_image(&docker, &fixtures).await?;
            println!(
                "{} on {}: {} in {:.1} s",
                r.tag,
                r.base,
                if r.built { "built" } else { "present" },
                r.elapsed.as_secs_f64()
            );
            if let Some(dir) = save {
                let (path, size) = images::save(&docker, &fixtures, &dir).await?;
                println!(
                    "saved {} ({:.0} MiB)",
                    path.display(),
                    size as f64 / 1048576.0
                );
            }
            if prune {
                let removed = images::prune(&docker, &fixtures).await?;
                println!(
                    "removed {} image(s) of older recipes{}",
                    removed.len(),
                    if removed.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", removed.join(", "))
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { design, runs, cold } => bench(&design, runs.max(1), cold).await,
        Command::Sweep { all } => {
            let docker = docker::connect().await?;
            let (what, runs) = if all {
                ("", docker::remove_all(&docker).await?)
            } else {
                ("dead ", docker::sweep_dead_runs(&docker).await?)
            };
            let names = if runs.is_empty() {
                String::new()
            } else {
                format!(": {}", runs.join(", "))
            };
            println!("removed {} {what}run(s){names}", runs.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Where `check` writes its reports.
struct Outputs {
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    html: Option<PathBuf>,
    markdown: Option<PathBuf>,
}

/// A user's own files for `check`, and the domain they serve.
struct UserFiles {
    configs: Vec<stackproof::config::ConfigArg>,
    scripts: Vec<stackproof::config::ConfigArg>,
    domain: Option<String>,
    addresses: Vec<stackproof::config::AddressArg>,
    mutant: Option<String>,
}

async fn check(
    design: &str,
    fixtures: Option<PathBuf>,
    only: &[String],
    outputs: Outputs,
    keep: bool,
    stacks: u8,
    users: UserFiles,
) -> Result<ExitCode, Error> {
    let mut loaded = Design::load(design)?;
    if let Some(m) = &users.mutant {
        loaded = loaded.with_mutant(m)?;
        println!("stackproof check {design}: with mutant `{m}`");
    }
    // The user's folder over the design (the flag; STACKPROOF_FIXTURES is already a layer).
    let from_env = std::env::var_os("STACKPROOF_FIXTURES").map(PathBuf::from);
    if let Some(dir) = fixtures
        && from_env.as_ref() != Some(&dir)
    {
        loaded = loaded.with_overlay(dir)?;
    }
    let mut claims = loaded.claims.clone();
    if !only.is_empty() {
        for id in only {
            if !claims.iter().any(|c| &c.id == id) {
                return Err(Error::Unknown {
                    kind: "claim",
                    name: id.clone(),
                    known: claims
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        claims.retain(|c| only.iter().any(|id| id == &c.id));
    }
    // The user's own files, mapped onto the run, over everything else.
    let scratch = stackproof::mutant::TempDir(std::env::temp_dir().join(format!(
        "stackproof-config-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )));
    // Install scripts first: each leaves a file to check like a --config one.
    let mut configs = users.configs.clone();
    if !users.scripts.is_empty() {
        let docker = docker::connect().await?;
        let image = images::ensure_server_image(&docker, &loaded.fixtures).await?;
        for s in &users.scripts {
            let ran =
                stackproof::config::script::run(&s.path, &s.kind, &image.tag, &scratch.0).await?;
            for line in &ran.report {
                println!("  {line}");
            }
            configs.push(stackproof::config::ConfigArg {
                host: s.host.clone(),
                kind: s.kind.clone(),
                origin: Some(format!("{} as {} wrote it", ran.target, s.path.display())),
                path: ran.config,
            });
        }
    }
    let applied = stackproof::config::apply(
        &loaded,
        &configs,
        users.domain.as_deref(),
        &users.addresses,
        &scratch.0.join("mapped"),
    )?;
    if let Some(dir) = &applied.overlay {
        loaded = loaded.with_users_files(dir.clone())?;
    }
    let design = loaded.name.as_str();
    println!("stackproof check {design}: starting the design");
    let started = std::time::Instant::now();
    // With --stacks N, the others start at the same time as the first: every
    // stack is up before any claim runs (see run_on_stacks).
    let others = (1..stacks).map(|_| loaded.start());
    let (first, others) = futures::join!(loaded.start(), futures::future::join_all(others));
    let mut stack = match first {
        Ok(s) => s,
        Err(e) if !applied.report.is_empty() => {
            println!("your files, mapped onto the run (line numbers are your file's):");
            for r in &applied.report {
                println!("{r}");
            }
            eprintln!("stackproof: {}", applied.in_users_terms(&e.chain()));
            for h in &applied.hints {
                eprintln!("  instead: {h}");
            }
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e),
    };
    if !applied.report.is_empty() {
        println!("  your files, mapped onto the run (line numbers are your file's):");
        for r in &applied.report {
            // The run's addresses, now that it has them.
            let mut shown = r.clone();
            for (k, v) in &stack.vars {
                shown = shown.replace(&format!("{{{{ {k} }}}}"), v);
            }
            println!("  {}", shown.replace('\n', "\n  "));
        }
    }
    if keep {
        stack.keep();
    }
    println!(
        "  up in {} ms (run {}, image {}{})",
        stack.up_time.as_millis(),
        stack.run.id,
        stack.image.tag,
        if stack.image.built {
            format!(", built in {:.1} s", stack.image.elapsed.as_secs_f64())
        } else {
            String::new()
        }
    );
    for note in &stack.notes {
        println!("  note: {}", note.replace('\n', "\n        "));
    }
    // Grouped by the part of the design they speak for, in catalogue order within a part.
    claims.sort_by_key(|c| report::PARTS.iter().position(|p| *p == report::part(&c.id)));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if usize::from(stacks) > cores {
        println!(
            "  note: {stacks} stacks on {cores} cores: a timing claim (a failover's outage) may then measure the machine's load, not the design"
        );
    }
    let outcomes = if stacks > 1 {
        let mut more = Vec::new();
        let outcomes = run_on_stacks(&stack, others, &claims, keep, &mut more).await;
        // The other stacks go now, in the background, while the reports are written.
        let removing: Vec<_> = more.into_iter().map(|s| s.remove_in_background()).collect();
        drop(removing);
        outcomes
    } else {
        let mut outcomes = Vec::new();
        let mut part = "";
        // Stacks a claim left changed, going while the claims go on.
        let mut replaced = Vec::new();
        for (i, c) in claims.iter().enumerate() {
            // Claims come grouped by the part of the design they speak for.
            if report::part(&c.id) != part {
                part = report::part(&c.id);
                println!("\n{part}");
            }
            let o = run_showing_waits(&stack, c).await;
            println!("{}", report::checklist_line(&o));
            outcomes.push(o);
            if stack.tainted() && i + 1 < claims.len() {
                // What the claims after it measure must be the design.
                match loaded.start().await {
                    Ok(mut fresh) => {
                        if keep {
                            fresh.keep();
                        }
                        println!(
                            "  note: {} left the stack changed; the claims after it run on a fresh one (run {}, up in {} ms)",
                            c.id,
                            fresh.run.id,
                            fresh.up_time.as_millis()
                        );
                        replaced.push(std::mem::replace(&mut stack, fresh).remove_in_background());
                    }
                    Err(e) => println!(
                        "  note: {} left the stack changed and a fresh one did not start ({}); the claims after it run on the changed one",
                        c.id,
                        e.chain().lines().next().unwrap_or("")
                    ),
                }
            }
        }
        outcomes
    };
    println!();
    let count = |f: fn(&claim::Verdict) -> bool| outcomes.iter().filter(|o| f(&o.verdict)).count();
    let (held, broken, unmeasured, skipped) = (
        count(claim::Verdict::held),
        count(claim::Verdict::broken),
        count(|v| matches!(v, claim::Verdict::NotMeasured(_))),
        count(claim::Verdict::skipped),
    );
    println!(
        "{held} held, {broken} broken, {unmeasured} not measured{}, in {:.1} s",
        if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    // The plain closing line CI systems read.
    println!("{held} passed, {} failed", broken + unmeasured);
    let versions = stack.versions().await;
    let r = RunReport {
        versions: &versions,
        design,
        run: &stack.run.id,
        up_ms: stack.up_time.as_millis(),
        image_built: stack.image.built,
        image: &stack.image.tag,
        claims: &outcomes,
    };
    if let Some(p) = outputs.json {
        report::write_json(&p, &r)?;
    }
    if let Some(p) = outputs.junit {
        report::write_junit(&p, &r)?;
    }
    if let Some(p) = outputs.markdown {
        report::write_markdown(&p, &loaded, &r)?;
    }
    if let Some(p) = outputs.html {
        let page = stackproof::html::page(&loaded, &r, started.elapsed().as_secs_f64());
        std::fs::write(&p, page).map_err(Error::io(format!("write `{}`", p.display())))?;
    }
    drop(stack);
    Ok(ExitCode::from(claim::exit_code(&outcomes)))
}

/// `stackproof grade`: every submission, as many at once as the machine allows.
async fn grade(
    design: &str,
    dirs: &[PathBuf],
    out: &std::path::Path,
    jobs: Option<usize>,
) -> Result<ExitCode, Error> {
    use futures::StreamExt as _;
    use stackproof::grade;
    let loaded = Design::load(design)?;
    let subs = grade::find(dirs)?;
    let (auto, why) = grade::parallelism(&loaded);
    let n = jobs.unwrap_or(auto).max(1);
    println!(
        "stackproof grade {}: {} submission(s), {}",
        loaded.name,
        subs.len(),
        if jobs.is_some() {
            format!("{n} at once (--jobs)")
        } else {
            why
        }
    );
    std::fs::create_dir_all(out).map_err(Error::io(format!("create `{}`", out.display())))?;
    let scratch = stackproof::mutant::TempDir(std::env::temp_dir().join(format!(
        "stackproof-grade-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )));
    let docker = docker::connect().await?;
    let image = images::ensure_server_image(&docker, &loaded.fixtures)
        .await?
        .tag;
    let started = std::time::Instant::now();
    let prewarm = stackproof::skeleton::Prewarm::start();
    // Stacks still being removed while the next submissions run; waited for below.
    let removals = std::sync::Mutex::new(Vec::new());
    let runs = subs.iter().enumerate().map(|(i, sub)| {
        let (loaded, dir, image) = (&loaded, scratch.0.join(format!("{i}")), &image);
        let removals = &removals;
        async move {
            (
                i,
                grade::grade_one(loaded, sub, image, &dir, removals).await,
            )
        }
    });
    let mut graded: Vec<(usize, grade::Graded)> = Vec::new();
    let mut stream = futures::stream::iter(runs).buffer_unordered(n);
    while let Some((i, g)) = stream.next().await {
        let mut text = format!("\n== {} ==\n", g.name);
        for m in &g.mapping {
            let _ = writeln_str(&mut text, m);
        }
        match &g.error {
            Some(e) => {
                let _ = writeln_str(
                    &mut text,
                    &format!(
                        "ERROR: could not run: {}",
                        stackproof::config::mask_secrets(e)
                    ),
                );
            }
            None => {
                for o in &g.outcomes {
                    let _ = writeln_str(&mut text, &report::checklist_line_short(o));
                }
            }
        }
        print!("{text}");
        let file = out.join(format!("{}.txt", g.name));
        std::fs::write(&file, &text).map_err(Error::io(format!("write `{}`", file.display())))?;
        graded.push((i, g));
    }
    drop(stream);
    prewarm.finish().await;
    drop(removals.into_inner().expect("removals lock"));
    graded.sort_by_key(|(i, _)| *i);
    let graded: Vec<grade::Graded> = graded.into_iter().map(|(_, g)| g).collect();
    let md = grade::summary_markdown(&loaded, &graded);
    let csv = grade::summary_csv(&loaded, &graded);
    for (name, text) in [("summary.md", &md), ("summary.csv", &csv)] {
        let file = out.join(name);
        std::fs::write(&file, text).map_err(Error::io(format!("write `{}`", file.display())))?;
    }
    println!(
        "\n{md}\ngraded {} submission(s) in {:.1} s; wrote {}",
        graded.len(),
        started.elapsed().as_secs_f64(),
        out.join("summary.md").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn writeln_str(s: &mut String, line: &str) -> std::fmt::Result {
    use std::fmt::Write as _;
    writeln!(s, "{line}")
}

/// `check --stacks N`: the claims shared out among `first` and the `more`
/// stacks of the same design that started with it, each stack taking the
/// next claim in catalogue order when it is free; lines are printed in
/// catalogue order as soon as every claim before them has ended. The other
/// stacks are handed back in `started` for the caller to remove.
async fn run_on_stacks(
    first: &stackproof::stack::Stack,
    more: Vec<Result<stackproof::stack::Stack, Error>>,
    claims: &[claim::Claim],
    keep: bool,
    started: &mut Vec<stackproof::stack::Stack>,
) -> Vec<claim::Outcome> {
    use std::sync::Mutex;
    let next = Mutex::new(0usize);
    let done: Mutex<Vec<Option<claim::Outcome>>> = Mutex::new(vec![None; claims.len()]);
    // (next line to print, the part printed last)
    let printed = Mutex::new((0usize, String::new()));
    // Every stack up before any claim: bringing a stack up takes both
    // cores, and a failover measured meanwhile saw outages of 1.7-2.3 s
    // instead of 0.3 s.
    for s in more {
        match s {
            Ok(mut s) => {
                if keep {
                    s.keep();
                }
                println!("  stack {} up in {} ms", s.run.id, s.up_time.as_millis());
                started.push(s);
            }
            Err(e) => println!(
                "  another stack did not start ({}); its share goes to the others",
                e.chain().lines().next().unwrap_or("")
            ),
        }
    }
    let healthy = std::sync::atomic::AtomicUsize::new(1 + started.len());
    let workers = std::iter::once(first)
        .chain(started.iter())
        .map(|s| claim_worker(s, claims, &next, &done, &printed, &healthy));
    futures::future::join_all(workers).await;
    done.into_inner()
        .expect("outcomes lock")
        .into_iter()
        .map(|o| o.expect("every claim ran"))
        .collect()
}

/// One stack's share of `check --stacks N`: takes the next claim until
/// none is left, and prints every line whose turn has come.
async fn claim_worker(
    stack: &stackproof::stack::Stack,
    claims: &[claim::Claim],
    next: &std::sync::Mutex<usize>,
    done: &std::sync::Mutex<Vec<Option<claim::Outcome>>>,
    printed: &std::sync::Mutex<(usize, String)>,
    healthy: &std::sync::atomic::AtomicUsize,
) {
    use std::sync::atomic::Ordering;
    let mut counted_out = false;
    loop {
        let i = {
            let mut n = next.lock().expect("queue lock");
            *n += 1;
            *n - 1
        };
        let Some(c) = claims.get(i) else { return };
        let o = claim::run(stack, c).await;
        let mut done = done.lock().expect("outcomes lock");
        done[i] = Some(o);
        let mut p = printed.lock().expect("print lock");
        while let Some(Some(o)) = done.get(p.0) {
            let part = report::part(&o.id);
            if part != p.1 {
                p.1 = part.to_string();
                println!("\n{part}");
            }
            println!("{}", report::checklist_line(o));
            p.0 += 1;
        }
        drop((p, done));
        // A stack a claim left changed takes no more claims, unless every
        // other one has stopped too: the claims must still run somewhere.
        if stack.tainted() && !counted_out {
            counted_out = true;
            if healthy.fetch_sub(1, Ordering::SeqCst) == 1 {
                continue;
            }
            println!(
                "  note: a claim left stack {} changed; the other stacks take the claims left",
                stack.run.id
            );
            return;
        }
    }
}

/// Runs one claim; at a terminal, a spinner shows it with what it waits
/// for meanwhile ("scale_up.lb.failover: the VIP to move from lb-1 to lb-2").
async fn run_showing_waits(stack: &stackproof::stack::Stack, c: &claim::Claim) -> claim::Outcome {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return claim::run(stack, c).await;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
            .expect("static template"),
    );
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let run = claim::run(stack, c);
    tokio::pin!(run);
    let outcome = loop {
        tokio::select! {
            o = &mut run => break o,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                let waiting = stack.waiting();
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

/// Every mutant against every claim, the way mutation-testing tools report:
/// which claims discriminate, which mutants break more than they should.
async fn mutants_matrix(design: &str) -> Result<ExitCode, Error> {
    let loaded = Design::load(design)?;
    let (claims, mutants) = (&loaded.claims, &loaded.mutants);
    let design = loaded.name.as_str();
    let short = |id: &str| id.trim_start_matches(&format!("{design}.")).to_string();
    println!(
        "stackproof mutants {design}: {} mutants x {} claims",
        mutants.len(),
        claims.len()
    );
    for (i, c) in claims.iter().enumerate() {
        println!("  {:>2}  {}", i + 1, short(&c.id));
    }
    println!(
        "F = FAIL, . = held, E = ERROR (not measured), - = skipped, S = the design did not start"
    );
    let header: String = (1..=claims.len()).map(|i| format!("{i:>3}")).collect();
    println!("{:<32}{header}  own claim", "mutant");
    let (mut killed, mut over) = (0, 0);
    let mut removals = Vec::new();
    let prewarm = stackproof::skeleton::Prewarm::start();
    for m in mutants {
        let row: Vec<char> = match loaded.start_mutant(m).await {
            Ok(stack) => {
                let mut row = Vec::new();
                for c in claims {
                    let o = claim::run(&stack, c).await;
                    row.push(match o.verdict {
                        claim::Verdict::Held => '.',
                        claim::Verdict::Skipped(_) => '-',
                        claim::Verdict::Broken(_) => 'F',
                        claim::Verdict::NotMeasured(_) => 'E',
                    });
                }
                // The next mutant starts while this one's stack goes.
                removals.push(stack.remove_in_background());
                row
            }
            Err(e) => {
                eprintln!(
                    "  mutant {} did not start: {}",
                    m.name,
                    e.chain().lines().next().unwrap_or("")
                );
                vec!['S'; claims.len()]
            }
        };
        let own = claims.iter().position(|c| c.id == m.fails);
        let caught = own.is_some_and(|i| row[i] == 'F');
        killed += usize::from(caught);
        let others = row
            .iter()
            .enumerate()
            .filter(|(i, v)| Some(*i) != own && **v == 'F')
            .count();
        over += usize::from(others > 0);
        println!(
            "{:<32}{}  {} {}{}",
            m.name,
            row.iter().map(|v| format!("{v:>3}")).collect::<String>(),
            own.map(|i| (i + 1).to_string())
                .unwrap_or_else(|| "?".into()),
            if caught { "killed" } else { "SURVIVED" },
            if others > 0 {
                format!(", also breaks {others} other claim(s)")
            } else {
                String::new()
            }
        );
    }
    prewarm.finish().await;
    drop(removals);
    let n = mutants.len().max(1);
    println!(
        "mutation score: {killed} of {} mutants killed by their own claim ({:.0} %); {over} break other claims too",
        mutants.len(),
        killed as f64 * 100.0 / n as f64
    );
    Ok(if killed == mutants.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints min/median/max of each figure over `runs` runs. Figures, not
/// verdicts: the budgets in DESIGN.md are compared by a person, because
/// timings on a shared machine are not fit to fail a build.
async fn bench(design: &str, runs: usize, cold: bool) -> Result<ExitCode, Error> {
    let loaded = Design::load(design)?;
    let claims = &loaded.claims;
    let design = loaded.name.as_str();
    let docker = docker::connect().await?;
    let fixtures = loaded.fixtures.clone();
    if cold {
        images::remove_images(&docker).await?;
    }
    let image = images::ensure_server_image(&docker, &fixtures).await?;
    println!(
        "image {}: {} in {:.1} s",
        image.tag,
        if image.built {
            "built (cold)"
        } else {
            "present (warm)"
        },
        image.elapsed.as_secs_f64()
    );
    let mut figures: Vec<(String, Vec<f64>)> = Vec::new();
    let mut record = |name: &str, value: f64| match figures.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => v.push(value),
        None => figures.push((name.to_string(), vec![value])),
    };
    let mut failures = 0;
    // A later run's stack starts on hosts made while the previous one ran,
    // as in a suite: "topology up, a later stack" is that figure.
    let prewarm = (runs > 1).then(stackproof::skeleton::Prewarm::start);
    for i in 0..runs {
        let stack = loaded.start().await?;
        if i == 0 {
            // Figures through the probe host and from this machine differ
            // a little: say which these are (STACKPROOF_TRAFFIC).
            println!("claims' traffic from {}", stack.client.net.origin());
        }
        record(
            "topology up, all services ready (ms)",
            stack.up_time.as_millis() as f64,
        );
        if i > 0 {
            // The same figure for a stack that is not the process's first.
            record(
                "topology up, a later stack of the process (ms)",
                stack.up_time.as_millis() as f64,
            );
        }
        record(
            "hosts created and started, no service yet (ms)",
            stack.hosts_up.as_millis() as f64,
        );
        let mut claims_ms = 0.0;
        for c in claims {
            let o = claim::run(&stack, c).await;
            if !o.verdict.held() && !o.verdict.skipped() {
                failures += 1;
                println!("run {}: {}", i + 1, report::checklist_line(&o));
            }
            claims_ms += o.millis as f64;
            record(&format!("{} (ms)", c.id), o.millis as f64);
            for (name, value) in &o.figures {
                record(&format!("  {name}"), *value);
            }
        }
        record(WHOLE_CHECK, stack.up_time.as_millis() as f64 + claims_ms);
        record(
            "memory of the running topology (MiB)",
            stack.memory_bytes().await? as f64 / 1048576.0,
        );
        let t = std::time::Instant::now();
        drop(stack);
        record("teardown (ms)", t.elapsed().as_millis() as f64);
        // docker-compose starting the same hosts, on an idle engine as ours did.
        match stackproof::compose::hosts_up(&loaded.spec, &image.tag).await {
            Ok(up) => record(COMPOSE_HOSTS, up.took.as_millis() as f64),
            Err(why) if i == 0 => println!("docker-compose comparison not measured: {why}"),
            Err(_) => {}
        }
    }
    if let Some(p) = prewarm {
        p.finish().await;
    }
    println!("{design}, {runs} run(s):");
    println!(
        "  {:<52} {:>9} {:>9} {:>9}",
        "figure", "min", "median", "max"
    );
    let mut figures_sorted = Vec::new();
    for (name, mut v) in figures {
        v.sort_by(|a, b| a.total_cmp(b));
        figures_sorted.push((name.clone(), v.clone()));
        println!(
            "  {name:<52} {:>9.1} {:>9.1} {:>9.1}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
    // The budgets beside the figures they concern: figures, not a verdict.
    let budgets: Vec<&(&str, &str, f64, &str)> = BUDGETS
        .iter()
        .filter(|(d, ..)| d.is_empty() || *d == design)
        .collect();
    let mut header = false;
    for (_, prefix, budget, note) in budgets {
        for (name, v) in figures_sorted
            .iter()
            .filter(|(n, _)| n.trim_start().starts_with(prefix))
        {
            if !header {
                println!("budgets (the median beside each):");
                header = true;
            }
            let median = v[v.len() / 2];
            println!(
                "  {:<52} {median:>9.1} {:>9} {budget:>9.0}  {note}",
                name.trim_start(),
                if median <= *budget { "within" } else { "over" }
            );
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The bench's figure for a whole warm `check`: topology up, then every claim.
const WHOLE_CHECK: &str = "whole check: up, then every claim (ms)";
/// docker-compose's side of the comparison (see `stackproof::compose`).
const COMPOSE_HOSTS: &str = "docker-compose up -d, the same hosts, no service (ms)";

/// The performance budgets (design, figure name prefix, budget, what it
/// says), printed beside the measured medians. An empty design is any.
const BUDGETS: &[(&str, &str, f64, &str)] = &[
    (
        "scale_up",
        WHOLE_CHECK,
        15_000.0,
        "warm check under 15 s (30 s on 2026-11-27; 42 s on 2026-11-30 through the probe host, 32-33 s once commands went to kept shells)",
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
