//! `stackproof check`: a design's checklist, one line per claim with its
//! evidence, and the reports a CI system reads.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::claim;
use crate::error::Error;
use crate::report::{self, RunReport};
use crate::run::{self, Plan, Runner, Schedule};

/// Where `check` writes its reports.
#[derive(Clone)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
}

/// `--repeat N` and `--allow-flaky`.
#[derive(Clone, Copy)]
pub struct Repeat {
    pub times: u16,
    pub allow_flaky: bool,
}

/// A user's own files for `check`, the domain they serve, the mutant and
/// the platforms.
#[derive(Clone)]
pub struct UserFiles {
    pub configs: Vec<crate::config::ConfigArg>,
    pub scripts: Vec<crate::config::ConfigArg>,
    pub domain: Option<String>,
    pub addresses: Vec<crate::config::AddressArg>,
    pub mutant: Option<String>,
    /// `--platform`: none is the design's own or the default; two or
    /// more compare the platforms claim by claim.
    pub platforms: Vec<String>,
}

/// `stackproof check`: on one platform, or on each of several one after
/// another (never side by side: timed claims need the machine), then a
/// table with a column per platform, the claims whose verdicts differ
/// marked. A report per platform (`report.json` becomes
/// `report.debian-12.json`); the exit status is 1 when any claim broke on
/// any platform, 2 when one could not be checked.
pub async fn check(
    design: &str,
    fixtures: Option<PathBuf>,
    only: &[String],
    outputs: Outputs,
    keep: bool,
    (stacks, repeat): (u8, Repeat),
    users: UserFiles,
) -> Result<ExitCode, Error> {
    if users.platforms.len() <= 1 {
        let platform = users.platforms.first().cloned();
        return check_on(
            design,
            fixtures,
            only,
            outputs,
            keep,
            (stacks, repeat),
            users,
            platform,
        )
        .await
        .map(|(code, _)| code);
    }
    let mut columns = Vec::new();
    let mut worst = 0u8;
    for platform in &users.platforms {
        println!("\n=== on {platform} ===");
        let outputs = Outputs {
            json: outputs.json.as_deref().map(|p| per_platform(p, platform)),
            junit: outputs.junit.as_deref().map(|p| per_platform(p, platform)),
            html: outputs.html.as_deref().map(|p| per_platform(p, platform)),
            markdown: outputs
                .markdown
                .as_deref()
                .map(|p| per_platform(p, platform)),
        };
        let (code, outcomes) = check_on(
            design,
            fixtures.clone(),
            only,
            outputs,
            keep,
            (stacks, repeat),
            users.clone(),
            Some(platform.clone()),
        )
        .await?;
        worst = worst.max(if code == ExitCode::SUCCESS {
            0
        } else if outcomes.is_empty() {
            2
        } else {
            1
        });
        columns.push((platform.clone(), outcomes));
    }
    println!("\n{}", platform_table(&columns));
    Ok(ExitCode::from(worst))
}

/// `dir/report.json` as `dir/report.<platform>.json`.
fn per_platform(path: &std::path::Path, platform: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{platform}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{platform}"),
    };
    path.with_file_name(name)
}

/// One row per claim, a column per platform, `≠` before a claim whose
/// verdicts differ; the count of those last.
fn platform_table(columns: &[(String, Vec<claim::Outcome>)]) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for (_, outcomes) in columns {
        for o in outcomes {
            if !ids.contains(&o.id.as_str()) {
                ids.push(&o.id);
            }
        }
    }
    let width = ids.iter().map(|i| i.len()).max().unwrap_or(5).max(5);
    let mut t = format!("  {:<width$}", "claim");
    for (platform, _) in columns {
        t.push_str(&format!("  {platform:<10}"));
    }
    let mut differ = 0;
    for id in &ids {
        let verdicts: Vec<&str> = columns
            .iter()
            .map(|(_, outcomes)| {
                outcomes
                    .iter()
                    .find(|o| o.id == *id)
                    .map_or("-", |o| o.verdict.label())
            })
            .collect();
        let differs = verdicts.iter().any(|v| *v != verdicts[0]);
        differ += usize::from(differs);
        t.push_str(&format!(
            "\n{} {id:<width$}",
            if differs { "≠" } else { " " }
        ));
        for v in verdicts {
            t.push_str(&format!("  {v:<10}"));
        }
    }
    t.push_str(&format!(
        "\n{differ} of {} claims differ between {}",
        ids.len(),
        columns
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>()
            .join(" and ")
    ));
    t
}

/// `check` on one platform (none: the design's own or the default): its
/// exit status and outcomes (none when it could not start).
#[allow(clippy::too_many_arguments)]
async fn check_on(
    design: &str,
    fixtures: Option<PathBuf>,
    only: &[String],
    outputs: Outputs,
    keep: bool,
    (stacks, repeat): (u8, Repeat),
    users: UserFiles,
    platform: Option<String>,
) -> Result<(ExitCode, Vec<claim::Outcome>), Error> {
    if repeat.times > 1 && stacks > 1 {
        eprintln!(
            "stackproof: --repeat runs every claim again on one stack; drop --stacks (or --repeat)"
        );
        return Ok((ExitCode::from(2), Vec::new()));
    }
    if let Some(m) = &users.mutant {
        println!("stackproof check {design}: with mutant `{m}`");
    }
    let mut prepared = Plan::new(design)
        .with_fixtures(fixtures)
        .with_mutant(users.mutant)
        .on_platform(platform)
        .with_only(only.to_vec())
        .with_users_files(users.configs, users.scripts, users.domain, users.addresses)
        .prepare()
        .await?;
    for line in prepared
        .overlay_report()
        .iter()
        .chain(prepared.script_report())
    {
        println!("  {line}");
    }
    // Grouped by the part of the design they speak for, in catalogue order within a part.
    prepared
        .claims
        .sort_by_key(|c| report::PARTS.iter().position(|p| *p == report::part(&c.id)));
    let design = prepared.design.name.clone();
    println!("stackproof check {design}: starting the design");
    let started = std::time::Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if usize::from(stacks) > cores {
        println!(
            "  note: {stacks} stacks on {cores} cores: a timing claim (a failover's outage) may then measure the machine's load, not the design"
        );
    }
    let runner = Runner::new(prepared).keeping(keep).showing_waits(true);
    let schedule = match (stacks, repeat.times) {
        (s, _) if s > 1 => Schedule::OnStacks(s),
        (_, r) if r > 1 => Schedule::Repeated(r),
        _ => Schedule::InTurn,
    };
    // Each outcome as it ends, under its part's heading.
    let part = std::cell::Cell::new("");
    let show = |event: run::Event<'_>| match event {
        run::Event::Up(stack) => print_up(runner.prepared(), stack),
        run::Event::Ended(o) => {
            if report::part(&o.id) != part.get() {
                part.set(report::part(&o.id));
                println!("\n{}", part.get());
            }
            println!("{}", with_users_files(runner.prepared(), o));
        }
        run::Event::Note(note) => println!("  note: {note}"),
    };
    let ran = match runner.run(schedule, show).await {
        Ok(ran) => ran,
        Err(e) if runner.prepared().has_users_files() => {
            let prepared = runner.prepared();
            println!("your files, mapped onto the run (line numbers are your file's):");
            for r in prepared.mapping() {
                println!("{r}");
            }
            eprintln!("stackproof: {}", prepared.explain(&e));
            return Ok((ExitCode::from(2), Vec::new()));
        }
        Err(e) => return Err(e),
    };
    let (outcomes, stack, _removals) = (ran.outcomes, ran.stack, ran.removals);
    let loaded = &runner.prepared().design;
    let design = loaded.name.as_str();
    print_causes(runner.prepared(), &outcomes);
    print_totals(&outcomes, started);
    let versions = stack.versions().await;
    let platform = loaded
        .platform()
        .map(|p| p.name().to_string())
        .unwrap_or_default();
    let r = RunReport {
        versions: &versions,
        design,
        platform: &platform,
        run: &stack.run.id,
        up_ms: stack.up_time.as_millis(),
        image_built: stack.image.built,
        image: &stack.image.tag,
        claims: &outcomes,
    };
    write_reports(outputs, loaded, &r, started)?;
    drop(stack);
    if repeat.allow_flaky {
        // FLAKY claims are reported as such and let the run pass.
        let mut judged = outcomes.clone();
        for o in judged.iter_mut().filter(|o| o.verdict.flaky()) {
            o.verdict = claim::Verdict::Pass;
        }
        return Ok((ExitCode::from(claim::exit_code(&judged)), outcomes));
    }
    Ok((ExitCode::from(claim::exit_code(&outcomes)), outcomes))
}

/// The user's files as mapped onto the started stack, its start figures and notes.
fn print_up(prepared: &run::Prepared, stack: &crate::stack::Stack) {
    if prepared.has_users_files() {
        println!("  your files, mapped onto the run (line numbers are your file's):");
        for r in prepared.mapping_on(stack) {
            println!("  {}", r.replace('\n', "\n  "));
        }
    }
    let platform = prepared
        .design
        .platform()
        .map(|p| format!(", {}", p.release()))
        .unwrap_or_default();
    println!(
        "  up in {} ms (run {}, image {}{platform}{})",
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
        let note = prepared.note_in_users_terms(note);
        println!("  note: {}", note.replace('\n', "\n        "));
    }
}

/// The outcome's checklist line, each cause found followed by where it
/// is in the user's own files.
fn with_users_files(prepared: &run::Prepared, o: &crate::claim::Outcome) -> String {
    let mut line = report::checklist_line(o);
    if let Some(f) = o.verdict.failure() {
        for found in &f.found {
            if let Some(at) = prepared.in_users_files(found) {
                let said = format!("cause: {}", found.words);
                line = line.replacen(&said, &format!("{said} (your {at})"), 1);
            }
        }
    }
    line
}

/// Each cause behind several FAILs once, with where it is in the user's
/// files: a student fixes a cause, not each claim it broke.
fn print_causes(prepared: &run::Prepared, outcomes: &[crate::claim::Outcome]) {
    for (found, ids) in report::shared_causes(outcomes) {
        let at = prepared
            .in_users_files(&found)
            .map(|w| format!(" (your {w})"))
            .unwrap_or_default();
        println!(
            "\none cause behind {} FAILs{at}: {}\n  {}",
            ids.len(),
            found.words,
            ids.join(", ")
        );
    }
}

/// The totals, for a reader and (last line) for CI systems.
fn print_totals(outcomes: &[claim::Outcome], started: std::time::Instant) {
    println!();
    let count = |f: fn(&claim::Verdict) -> bool| outcomes.iter().filter(|o| f(&o.verdict)).count();
    let (held, broken, unmeasured, skipped, flaky) = (
        count(claim::Verdict::passed),
        count(claim::Verdict::failed),
        count(|v| matches!(v, claim::Verdict::Error(_))),
        count(claim::Verdict::skipped),
        count(claim::Verdict::flaky),
    );
    println!(
        "{held} held, {broken} broken{}, {unmeasured} not measured{}, in {:.1} s",
        if flaky > 0 {
            format!(" ({flaky} of them FLAKY)")
        } else {
            String::new()
        },
        if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    // The plain closing line CI systems read.
    println!("{held} passed, {} failed", broken + unmeasured);
}

/// Writes the reports the flags asked for.
fn write_reports(
    outputs: Outputs,
    loaded: &crate::Design,
    r: &RunReport<'_>,
    started: std::time::Instant,
) -> Result<(), Error> {
    if let Some(p) = outputs.json {
        report::write_json(&p, r)?;
    }
    if let Some(p) = outputs.junit {
        report::write_junit(&p, r)?;
    }
    if let Some(p) = outputs.markdown {
        report::write_markdown(&p, loaded, r)?;
    }
    if let Some(p) = outputs.html {
        let page = crate::html::page(loaded, r, started.elapsed().as_secs_f64());
        std::fs::write(&p, page).map_err(Error::io(format!("write `{}`", p.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use claim::Outcome;

    #[test]
    fn platforms_side_by_side_mark_the_claims_that_differ() {
        let failed = || claim::Verdict::Fail(crate::Failure::new("broke", ""));
        let columns = vec![
            (
                "debian-12".to_string(),
                vec![
                    Outcome::bare("d.a", claim::Verdict::Pass),
                    Outcome::bare("d.b", failed()),
                ],
            ),
            (
                "debian-13".to_string(),
                vec![
                    Outcome::bare("d.a", claim::Verdict::Pass),
                    Outcome::bare("d.b", claim::Verdict::Pass),
                ],
            ),
        ];
        let table = platform_table(&columns);
        assert!(table.contains("  d.a    PASS        PASS"), "{table}");
        assert!(table.contains("≠ d.b    FAIL        PASS"), "{table}");
        assert!(
            table.ends_with("1 of 2 claims differ between debian-12 and debian-13"),
            "{table}"
        );
        assert_eq!(
            per_platform(std::path::Path::new("out/report.json"), "debian-12"),
            PathBuf::from("out/report.debian-12.json")
        );
    }
}
