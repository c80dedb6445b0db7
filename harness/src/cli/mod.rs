//! The `stackproof` command: the checklist, the CI gate and the teacher's
//! grader. Arguments are parsed here and each command prints; the work is
//! the library's (`crate::run` takes every run from inputs to verdicts).
//! The binary is one call, [`main`]; living in the library, the command
//! uses the library's crate-private modules without making them public.

use std::process::ExitCode;

use crate::docker;
use crate::error::Error;
use clap::Parser;

mod args;

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

mod bench;
mod check;
mod grade;
mod info;
mod mutants;

use args::{Cli, Command};

/// Parses the command line, runs the command, and says how it ended.
pub fn main() -> ExitCode {
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
            platforms,
            claims,
            json,
            junit,
            html,
            markdown,
            keep,
            stacks,
            repeat,
            allow_flaky,
            configs,
            scripts,
            domain,
            addresses,
        } => {
            let users = check::UserFiles {
                configs,
                scripts,
                domain,
                addresses,
                mutant,
                platforms,
            };
            let out = check::Outputs {
                json,
                junit,
                html,
                markdown,
            };
            let repeat = check::Repeat {
                times: repeat,
                allow_flaky,
            };
            check::check(
                &design,
                fixtures,
                &claims,
                out,
                keep,
                (stacks, repeat),
                users,
            )
            .await
        }
        Command::Grade {
            design,
            submissions,
            out,
            jobs,
            claims,
            shard,
            html,
            platform,
            points,
            fresh,
        } => {
            let options = grade::Options {
                jobs,
                only: claims,
                shard,
                html,
                platform,
                points,
                fresh,
            };
            grade::grade(&design, &submissions, &out, options).await
        }
        Command::Classroom {
            design,
            points,
            configs,
            scripts,
            platform,
            out,
        } => grade::classroom(&design, &points, (&configs, &scripts), platform, out),
        Command::Merge {
            reports,
            html,
            junit,
            markdown,
            csv,
        } => info::merge(&reports, html, junit, markdown, csv),
        Command::Diff {
            base,
            head,
            markdown,
            json,
            threshold,
        } => info::diff(&base, &head, markdown, json, threshold),
        Command::Graph { design, format } => info::graph(&design, &format),
        Command::Kinds { name } => info::kinds(name),
        Command::New { folder, from } => info::new_design(&folder, &from),
        Command::List { design: None } => info::list_designs(),
        Command::List { design: Some(d) } => info::list_design(&d),
        Command::Mutants { design, platform } => mutants::mutants_matrix(&design, platform).await,
        Command::Images {
            load,
            save,
            prune,
            platforms,
        } => info::images(load, save, prune, &platforms).await,
        Command::Bench {
            design,
            runs,
            cold,
            claims,
            platform,
        } => bench::bench(&design, runs.max(1), cold, &claims, platform).await,
        Command::Sweep { all } => info::sweep(all).await,
    }
}
