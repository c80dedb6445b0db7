//! `stackproof grade`: a class, one run per submission, as many at once
//! as the machine allows.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::design::Design;
use crate::docker;
use crate::error::Error;
use crate::images;
use crate::report;

/// `stackproof grade`: every submission (of the shard), as many at once as
/// the machine allows. Exits 0 when every submission was graded (whatever
/// its verdicts); 1 when one could not be because of what it holds (its row
/// says why: a file its server refuses, nothing to grade), which a retry
/// repeats; 2 when stackproof itself failed (the engine, the image), which
/// a retry may get past (a cluster's Job retries that exit, not 1).
pub async fn grade(
    design: &str,
    dirs: &[PathBuf],
    out: &std::path::Path,
    options: Options,
) -> Result<ExitCode, Error> {
    use crate::grade;
    use futures::StreamExt as _;
    let Options {
        jobs,
        only,
        shard,
        html,
        platform,
        points,
        fresh,
    } = options;
    let only = only.as_slice();
    let mut loaded = Design::load(design)?;
    if let Some(p) = &platform {
        loaded = loaded.on_platform(p)?;
    }
    // The table's columns are the claims graded.
    loaded.claims = crate::run::select(&loaded.claims, only)?;
    let points = match &points {
        Some(file) => grade::points::read(file, &loaded)?,
        None => Default::default(),
    };
    let graded_ids: Vec<String> = loaded.claims.iter().map(|c| c.id.clone()).collect();
    if !points.is_empty() {
        let unscored = grade::points::unscored(&points, &graded_ids);
        if !unscored.is_empty() {
            println!(
                "warning: not scored, as the points file names no points for them: {}",
                unscored.join(", ")
            );
        }
    }
    let mut subs = grade::find(dirs)?;
    if let Some((i, n)) = shard {
        subs = shard_of(subs, i, n);
    }
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
    // The image once, before the submissions start side by side.
    let docker = docker::connect().await?;
    images::ensure_server_image(&docker, &loaded.fixtures).await?;
    let started = std::time::Instant::now();
    let prewarm = crate::skeleton::Prewarm::start();
    // The design's own stacks, one per submission running at once, which
    // take a submission's files in place where they can (and the stacks
    // being removed while the next submissions run; removed at the end).
    let pool = crate::run::Runner::new(
        crate::run::Plan::new(design)
            .on_platform(loaded.fixtures.asked_platform().map(String::from))
            .with_only(only.to_vec())
            .prepare()
            .await?,
    );
    let runs = subs.iter().enumerate().map(|(i, sub)| {
        let (loaded, pool) = (&loaded, &pool);
        async move {
            (
                i,
                grade::grade_one(loaded, design, only, sub, pool, !fresh).await,
            )
        }
    });
    let mut graded: Vec<(usize, grade::Graded)> = Vec::new();
    let mut stream = futures::stream::iter(runs).buffer_unordered(n);
    while let Some((i, g)) = stream.next().await {
        let mut text = submission_text(&g);
        if !points.is_empty() {
            let score = grade::points::score(&points, &graded_ids, &g);
            text.push_str(&format!("score: {score}\n"));
        }
        print!("{text}");
        let file = out.join(format!("{}.txt", g.name));
        std::fs::write(&file, &text).map_err(Error::io(format!("write `{}`", file.display())))?;
        graded.push((i, g));
    }
    drop(stream);
    prewarm.finish().await;
    pool.finish();
    graded.sort_by_key(|(i, _)| *i);
    let graded: Vec<grade::Graded> = graded.into_iter().map(|(_, g)| g).collect();
    let md = grade::summary_markdown(&loaded, &points, &graded);
    let csv = grade::summary_csv(&loaded, &points, &graded);
    // Read back by `merge`, to join the shards of a class.
    let class = grade::ClassReport {
        design: design.to_string(),
        claims: graded_ids.clone(),
        points: points.clone(),
        submissions: graded.clone(),
    };
    let mut pages = vec![
        ("summary.md".to_string(), md.clone()),
        ("summary.csv".to_string(), csv),
        (
            "class.json".to_string(),
            serde_json::to_string_pretty(&class).expect("plain data serialises"),
        ),
    ];
    if html {
        pages.extend(html_pages(&loaded, &points, &graded));
    }
    for (name, text) in &pages {
        let file = out.join(name);
        std::fs::write(&file, text).map_err(Error::io(format!("write `{}`", file.display())))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "\n{md}\ngraded {} submission(s) in {elapsed:.1} s ({:.0} submissions an hour at this pace); wrote {}",
        graded.len(),
        graded.len() as f64 * 3600.0 / elapsed.max(0.001),
        out.join("summary.md").display()
    );
    let ungraded = graded.iter().filter(|g| g.error.is_some()).count();
    let tool_failed = graded.iter().filter(|g| g.tool_failed).count();
    if tool_failed > 0 {
        println!(
            "{tool_failed} submission(s) not graded because stackproof itself failed \
             (their rows say how); run again"
        );
    } else if ungraded > 0 {
        println!("{ungraded} submission(s) could not be graded (their rows say why)");
    }
    Ok(ExitCode::from(grade::exit_status(&graded)))
}

/// `stackproof classroom`: GitHub Classroom's workflow from a points file.
pub fn classroom(
    design: &str,
    points: &std::path::Path,
    (configs, scripts): (&[String], &[String]),
    platform: Option<String>,
    out: Option<PathBuf>,
) -> Result<ExitCode, Error> {
    let mut loaded = Design::load(design)?;
    if let Some(p) = &platform {
        loaded = loaded.on_platform(p)?;
    }
    let points = crate::grade::points::read(points, &loaded)?;
    // Refused here as `check` would refuse it in every test of the workflow.
    for arg in configs.iter().chain(scripts) {
        arg.parse::<crate::config::ConfigArg>()
            .map_err(|detail| Error::InvalidFixture {
                path: PathBuf::from(arg),
                detail,
            })?;
    }
    let mut args = Vec::new();
    for c in configs {
        args.extend(["--config".to_string(), c.clone()]);
    }
    for s in scripts {
        args.extend(["--script".to_string(), s.clone()]);
    }
    if let Some(p) = platform {
        args.extend(["--platform".to_string(), p]);
    }
    let yaml = crate::grade::classroom::workflow(&loaded, &points, &args);
    match out {
        Some(file) => {
            crate::merge::write(&file, &yaml)?;
            println!(
                "wrote {} ({} tests, {} points)",
                file.display(),
                points.len(),
                points.values().sum::<u32>()
            );
        }
        None => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// How `grade` runs: `jobs` submissions at once (none: what the machine
/// allows), the claims `only` names (none: all), slice `shard` of the
/// class, with class pages (`html`), on `platform`, scored with `points`.
pub struct Options {
    pub jobs: Option<usize>,
    pub only: Vec<String>,
    pub shard: Option<(usize, usize)>,
    pub html: bool,
    pub platform: Option<String>,
    pub points: Option<PathBuf>,
    /// Every submission on a fresh stack (`--fresh`), none in place.
    pub fresh: bool,
}

/// Shard `i` of `n`: a stable slice, by name, every Nth from the Ith.
fn shard_of(
    mut subs: Vec<crate::grade::Submission>,
    i: usize,
    n: usize,
) -> Vec<crate::grade::Submission> {
    subs.sort_by(|a, b| a.name.cmp(&b.name));
    let subs: Vec<_> = subs
        .into_iter()
        .enumerate()
        .filter(|(k, _)| k % n == i - 1)
        .map(|(_, s)| s)
        .collect();
    println!(
        "shard {i}/{n}: {}",
        subs.iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    subs
}

/// One submission's section: its mapping, then its checklist or why it did not run.
fn submission_text(g: &crate::grade::Graded) -> String {
    let mut text = format!("\n== {} ==\n", g.name);
    for m in &g.mapping {
        let _ = writeln_str(&mut text, m);
    }
    if let Some(on) = &g.on {
        let _ = writeln_str(&mut text, &format!("graded {on}, ready in {} ms", g.up_ms));
    }
    match &g.error {
        Some(e) => {
            let _ = writeln_str(
                &mut text,
                &format!("ERROR: could not run: {}", crate::config::mask_secrets(e)),
            );
        }
        None => {
            for o in &g.outcomes {
                let _ = writeln_str(&mut text, &report::checklist_line_short(o));
            }
        }
    }
    text
}

/// The class page and one page per submission that ran.
fn html_pages(
    loaded: &Design,
    points: &crate::grade::points::Points,
    graded: &[crate::grade::Graded],
) -> Vec<(String, String)> {
    let mut pages = vec![(
        "class.html".to_string(),
        crate::grade::class_html(loaded, points, graded),
    )];
    let platform = loaded
        .platform()
        .map(|p| p.name().to_string())
        .unwrap_or_default();
    for g in graded.iter().filter(|g| g.error.is_none()) {
        let report = report::RunReport {
            design: &loaded.name,
            platform: &platform,
            run: &g.run,
            up_ms: g.up_ms,
            image_built: false,
            image: &g.image,
            claims: &g.outcomes,
            versions: &[],
        };
        let checked_s = g.outcomes.iter().map(|o| o.millis as f64 / 1000.0).sum();
        pages.push((
            format!("{}.html", g.name),
            crate::html::page(loaded, &report, checked_s),
        ));
    }
    pages
}

fn writeln_str(s: &mut String, line: &str) -> std::fmt::Result {
    use std::fmt::Write as _;
    writeln!(s, "{line}")
}
