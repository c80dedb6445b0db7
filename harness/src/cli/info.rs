//! The commands that read and print without running a design: merge,
//! graph, kinds, new, list, images, sweep.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::catalogue;
use crate::design::Design;
use crate::docker;
use crate::error::Error;
use crate::fixtures::Fixtures;
use crate::images;

/// `stackproof merge`: a CI matrix's reports as one.
pub fn merge(
    reports: &[PathBuf],
    html: Option<PathBuf>,
    junit: Option<PathBuf>,
    markdown: Option<PathBuf>,
    csv: Option<PathBuf>,
) -> Result<ExitCode, Error> {
    use crate::merge;
    let is_class = reports
        .first()
        .is_some_and(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"submissions\"")));
    if is_class {
        return merge_class(reports, html, junit, markdown, csv);
    }
    if let Some(p) = &csv {
        return Err(Error::InvalidFixture {
            path: p.clone(),
            detail: "--csv is the table of a class: give `grade`'s class.json files".into(),
        });
    }
    let saved = merge::read(reports)?;
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

/// `merge` of a class graded in shards: one page, table and JUnit file.
fn merge_class(
    shards: &[PathBuf],
    html: Option<PathBuf>,
    junit: Option<PathBuf>,
    markdown: Option<PathBuf>,
    csv: Option<PathBuf>,
) -> Result<ExitCode, Error> {
    use crate::{grade, merge};
    let class = grade::ClassReport::merged(shards)?;
    let mut design = crate::design::Design::load(&class.design)?;
    design.claims = crate::run::select(&design.claims, &class.claims)?;
    let graded = &class.submissions;
    if let Some(p) = &html {
        merge::write(p, &grade::class_html(&design, &class.points, graded))?;
    }
    if let Some(p) = &junit {
        merge::write(p, &class.junit())?;
    }
    if let Some(p) = &markdown {
        merge::write(p, &grade::summary_markdown(&design, &class.points, graded))?;
    }
    if let Some(p) = &csv {
        merge::write(p, &grade::summary_csv(&design, &class.points, graded))?;
    }
    let ungraded = graded.iter().filter(|g| g.error.is_some()).count();
    out!(
        "{}: {} submission(s) from {} shard(s), {ungraded} could not be graded",
        design.name,
        graded.len(),
        shards.len()
    );
    Ok(ExitCode::from(grade::exit_status(graded)))
}

/// `stackproof diff`: what changed between two runs of a design.
pub fn diff(
    base: &Path,
    head: &Path,
    markdown: Option<PathBuf>,
    json: Option<PathBuf>,
    threshold: f64,
) -> Result<ExitCode, Error> {
    use crate::merge;
    let saved = merge::read(&[base.to_path_buf(), head.to_path_buf()])?;
    let d = crate::diff::diff(&saved[0], &saved[1], threshold)?;
    out_raw!("{}", d.text());
    if let Some(p) = &markdown {
        merge::write(p, &d.markdown())?;
    }
    if let Some(p) = &json {
        merge::write(
            p,
            &serde_json::to_string_pretty(&d).expect("plain data serialises"),
        )?;
    }
    Ok(ExitCode::from(d.exit_code()))
}

/// `stackproof graph`: the topology, without running anything.
pub fn graph(design: &str, format: &str) -> Result<ExitCode, Error> {
    let loaded = Design::load(design)?;
    let none = Default::default();
    out_raw!(
        "{}",
        match format {
            "dot" => crate::graph::dot(&loaded, &none),
            "svg" => format!("{}\n", crate::html::topology_standalone(&loaded, &none)),
            _ => crate::graph::mermaid(&loaded, &none),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `stackproof kinds`: the check kinds, or one explained.
pub fn kinds(name: Option<String>) -> Result<ExitCode, Error> {
    let kinds = crate::kinds::Kinds::builtin();
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

/// `stackproof new`: a small working design to start from.
pub fn new_design(folder: &Path, from: &str) -> Result<ExitCode, Error> {
    let written = crate::design::new_design(folder, from)?;
    out!(
        "wrote {} ({} files, from {from}; its mutants left out, as they break {from}'s files: \
         add your own under mutants/); run it with:\n  stackproof check {}",
        folder.display(),
        written,
        folder.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `stackproof list`: the designs.
pub fn list_designs() -> Result<ExitCode, Error> {
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

/// `stackproof list <design>`: its claims and mutants.
pub fn list_design(d: &str) -> Result<ExitCode, Error> {
    let loaded = Design::load(d)?;
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

/// `stackproof images`: build, load, save or prune the images; each
/// platform's image with the version of every server it installed.
pub async fn images(
    load: Option<PathBuf>,
    save: Option<PathBuf>,
    prune: bool,
    platforms: &[String],
) -> Result<ExitCode, Error> {
    let docker = docker::connect().await?;
    let fixtures = Fixtures::from_env()?;
    if let Some(dir) = load {
        let files = images::load(&docker, &dir).await?;
        println!("loaded {} file(s) from {}", files.len(), dir.display());
    }
    let each: Vec<Fixtures> = if platforms.is_empty() {
        vec![fixtures.clone()]
    } else {
        platforms
            .iter()
            .map(|p| fixtures.clone().on_platform(p))
            .collect()
    };
    for fixtures in &each {
        let platform = fixtures.platform()?;
        let r = images::ensure_server_image(&docker, fixtures).await?;
        println!(
            "{} ({}) from {}: {} in {:.1} s, {:.0} MiB",
            r.tag,
            platform.release(),
            r.base,
            if r.built { "built" } else { "present" },
            r.elapsed.as_secs_f64(),
            r.size as f64 / 1048576.0
        );
        for (service, version) in images::server_versions(&docker, fixtures, &r.tag).await? {
            println!("  {service:<18} {version}");
        }
    }
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
            "removed {} image(s) of older recipes or test tools{}",
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

/// `stackproof sweep`: what killed runs left behind.
pub async fn sweep(all: bool) -> Result<ExitCode, Error> {
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
