//! The command line: every command, its arguments and their help.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "stackproof",
    version,
    about = "Proves a web infrastructure design against real containers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// The platform its servers run on (debian-13, debian-12), over the
        /// design's own `platform` setting; several (`debian-12,debian-13`)
        /// check on each in turn and print a column per platform.
        #[arg(long = "platform", env = "STACKPROOF_PLATFORM", value_delimiter = ',')]
        platforms: Vec<String>,
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
        /// Run every claim this many times (faults undone between): per claim,
        /// how many times it held and each figure's min/p50/p95/max. A claim
        /// that both held and broke is FLAKY, which fails the run unless --allow-flaky.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
        repeat: u16,
        /// Let FLAKY claims pass the run (they are still reported as FLAKY).
        #[arg(long)]
        allow_flaky: bool,
        /// Your own configuration file, as it is on your server, mapped onto the
        /// run (repeatable): SERVER=PATH or HOST:SERVER=PATH, SERVER one of haproxy,
        /// nginx, apache, keepalived, mariadb, php-fpm, prometheus, iptables.
        #[arg(long = "config", value_name = "[HOST:]SERVER=PATH")]
        configs: Vec<crate::config::ConfigArg>,
        /// An install script of yours that writes a server's configuration
        /// (SERVER=PATH, e.g. haproxy=./install_lb.sh): run in a throwaway host
        /// with the package installed and no network, package and service
        /// commands made harmless; the file it wrote is checked as --config.
        #[arg(long = "script", value_name = "SERVER=PATH")]
        scripts: Vec<crate::config::ConfigArg>,
        /// Your domain, when your files do not name it in a certificate path,
        /// redirect or Host rule (it becomes the run's foobar.com).
        #[arg(long)]
        domain: Option<String>,
        /// What an address in your files is in the design (repeatable), for
        /// files that only use addresses (firewall rules, scrape targets):
        /// ADDRESS=HOST, e.g. 10.0.0.5=lb-1. Addresses in HAProxy `server`
        /// lines and keepalived peers are learned without it.
        #[arg(long = "address", value_name = "ADDRESS=HOST")]
        addresses: Vec<crate::config::AddressArg>,
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
        /// Grade only these claims (repeatable; default: all): what the task asks for.
        #[arg(long = "claim")]
        claims: Vec<String>,
        /// Grade only slice I of N (`2/5`): the submissions sorted by name,
        /// every Nth from the Ith, so N machines share a class.
        #[arg(long, value_parser = parse_shard)]
        shard: Option<(usize, usize)>,
        /// Also write class.html (the class's pass rate per claim, every
        /// submission's verdicts, sortable) and each submission's own report.
        #[arg(long)]
        html: bool,
        /// The platform the servers run on (debian-13, debian-12), over the design's own.
        #[arg(long, env = "STACKPROOF_PLATFORM")]
        platform: Option<String>,
        /// Score each submission with these points (a TOML file, one
        /// `"claim.id" = points` per line): a PASS earns the claim's points,
        /// a SKIP leaves it out of the maximum, anything else earns none.
        #[arg(long)]
        points: Option<PathBuf>,
        /// Start a fresh stack for every submission, never grading one on a
        /// running stack of the design (the default where its files allow).
        #[arg(long)]
        fresh: bool,
    },
    /// Write GitHub Classroom's autograding workflow from a points file: one
    /// test per claim with points, each `stackproof check <design> --claim
    /// <ID>` on the student's files, worth the claim's points.
    Classroom {
        /// The design the students implement.
        design: String,
        /// The points per claim (as `grade --points`).
        #[arg(long)]
        points: PathBuf,
        /// A student's file, as their repository holds it (repeatable):
        /// SERVER=PATH or HOST:SERVER=PATH, as `check --config` takes it.
        #[arg(long = "config", value_name = "[HOST:]SERVER=PATH")]
        configs: Vec<String>,
        /// A student's install script (repeatable), as `check --script` takes it.
        #[arg(long = "script", value_name = "SERVER=PATH")]
        scripts: Vec<String>,
        /// The platform the checks run on.
        #[arg(long)]
        platform: Option<String>,
        /// Write the workflow here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Merge the JSON reports of many runs (a CI matrix's shards) into one
    /// HTML page, one JUnit file and one Markdown summary; exits as the
    /// worst run did (0 held, 1 a claim broke, 2 one was not measured).
    /// Given `grade`'s class.json files (a class graded in shards), writes
    /// one class page, table and JUnit file; exits as `grade` does (1 a
    /// submission could not be graded, 2 stackproof failed on one).
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
        /// Write one CSV table (shards of a class: `grade`'s class.json files).
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// What changed between two runs of a design (a pull request's base and
    /// head, each written by `check --json`): claims whose verdict moved,
    /// claims new or gone, figures that moved by more than --threshold.
    /// Exits 1 when a claim that held no longer does, else 0.
    Diff {
        /// The base run's report.
        base: PathBuf,
        /// The head run's report.
        head: PathBuf,
        /// Also write the comparison as Markdown here (a PR comment, `$GITHUB_STEP_SUMMARY`).
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Also write it as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// A figure moved when it changed by more than this share of the base's value.
        #[arg(long, default_value_t = crate::diff::DEFAULT_THRESHOLD)]
        threshold: f64,
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
        /// The platform the servers run on (debian-13, debian-12), over the design's own.
        #[arg(long, env = "STACKPROOF_PLATFORM")]
        platform: Option<String>,
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
        /// Remove server images of older recipes (about 1 GB each) and the
        /// test suites' tools images (rebuilt when a test needs one); every
        /// platform's current image stays.
        #[arg(long)]
        prune: bool,
        /// The platforms to build (or find) an image for and print the
        /// servers' versions of (`debian-12,debian-13`); default: the default one.
        #[arg(long = "platform", env = "STACKPROOF_PLATFORM", value_delimiter = ',')]
        platforms: Vec<String>,
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
        /// Measure only these claims (repeatable), e.g. `--claim scale_up.lb.failover --runs 20`
        #[arg(long = "claim")]
        claims: Vec<String>,
        /// The platform the servers run on (debian-13, debian-12), over the design's own.
        #[arg(long, env = "STACKPROOF_PLATFORM")]
        platform: Option<String>,
    },
    /// Remove what killed runs left behind (`--all`: every stackproof container and network).
    Sweep {
        /// Also remove runs whose process still lives.
        #[arg(long)]
        all: bool,
    },
}

/// `I/N` with 1 <= I <= N.
fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{text}`: write the slice as I/N, e.g. 2/5 (the 2nd of 5)");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}
