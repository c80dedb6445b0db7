//! Grading a class: one run of a design per submission folder, each with
//! the files found in it by name, mapped onto the run as `--config` does;
//! a checklist per submission and a table (submission x claim) as Markdown
//! and CSV. One broken submission never stops the others.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::claim::{Outcome, Verdict};
use crate::config::registry::{self, SERVERS};
use crate::config::{self, ConfigArg};
use crate::design::Design;
use crate::error::{Error, Result};

pub mod classroom;
pub mod points;
use points::Points;

/// One student's folder and the files found in it.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The folder's name, the table's row.
    pub name: String,
    /// The files found, as `--config` takes them.
    pub configs: Vec<ConfigArg>,
    /// Install scripts found (when a server's file itself is not there), as `--script` takes them.
    pub scripts: Vec<ConfigArg>,
    /// What was found more than once, or not at all.
    pub notes: Vec<String>,
}

/// The submissions in `dirs`, each searched (three levels deep) for the
/// servers' files by name (`haproxy.cfg`...) or, named as the curriculum
/// names them, by content.
pub fn find(dirs: &[PathBuf]) -> Result<Vec<Submission>> {
    let mut out = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(Error::InvalidFixture {
                path: dir.clone(),
                detail: "not a folder: `grade` takes one folder per submission".into(),
            });
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        let mut files = Vec::new();
        walk(dir, 3, &mut files);
        files.sort();
        let mut configs = Vec::new();
        let mut scripts = Vec::new();
        let mut notes = Vec::new();
        // The first server (HAProxy, which every graded design runs) is the
        // task's own file: its absence is noted, and a script that writes it
        // is looked for; the others are used when present.
        let by_name = SERVERS
            .iter()
            .flat_map(|s| s.file_names.iter().map(move |f| (f, &s.name)));
        for (file_name, kind) in by_name {
            let mut found: Vec<&PathBuf> = files
                .iter()
                .filter(|f| f.file_name().is_some_and(|n| n == *file_name))
                .collect();
            // The curriculum's own names (`1-haproxy_ssl_termination`): a
            // file with no extension and no shebang is a config by its content.
            if found.is_empty() {
                found = files
                    .iter()
                    .filter(|f| f.extension().is_none())
                    .filter(|f| {
                        std::fs::read_to_string(f).is_ok_and(|t| {
                            !t.starts_with("#!") && registry::sniff(&t) == Some(*kind)
                        })
                    })
                    .collect();
                if let Some(first) = found.first() {
                    notes.push(format!(
                        "{} read as {file_name} by its content",
                        first.strip_prefix(dir).unwrap_or(first).display()
                    ));
                }
            }
            match found.as_slice() {
                // One file per server: `my.cnf` when there is no `50-server.cnf`.
                _ if configs.iter().any(|c: &ConfigArg| c.server == *kind) => {}
                [] if *kind != SERVERS[0].name => {}
                [] => {
                    // A Bash script that writes the file, as students often hand in.
                    let script = files.iter().find(|f| {
                        std::fs::read_to_string(f).is_ok_and(|t| {
                            t.starts_with("#!")
                                && t.lines().next().is_some_and(|l| l.contains("sh"))
                                && SERVERS[0]
                                    .script_writes
                                    .is_some_and(|path| t.contains(path))
                        })
                    });
                    match script {
                        Some(f) => scripts.push(ConfigArg {
                            host: None,
                            server: kind.to_string(),
                            path: f.clone(),
                            origin: None,
                        }),
                        None => {
                            notes.push(format!("no {file_name} found, nor a script that writes it"))
                        }
                    }
                }
                [first, rest @ ..] => {
                    if !rest.is_empty() {
                        notes.push(format!(
                            "{} {file_name} files; graded {}",
                            found.len(),
                            first.strip_prefix(dir).unwrap_or(first).display()
                        ));
                    }
                    configs.push(ConfigArg {
                        host: None,
                        server: kind.to_string(),
                        path: (*first).clone(),
                        origin: None,
                    });
                }
            }
        }
        out.push(Submission {
            name,
            configs,
            scripts,
            notes,
        });
    }
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth > 0 {
            walk(&p, depth - 1, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

/// How one submission came out.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Graded {
    /// The submission's name.
    pub name: String,
    /// Its mapping report (what `--config` prints) and notes.
    pub mapping: Vec<String>,
    /// Every claim's outcome; empty when it could not run.
    pub outcomes: Vec<Outcome>,
    /// Why it could not run (a file the server refuses, nothing to grade...).
    pub error: Option<String>,
    /// Whether that was stackproof's own failure (the engine, the image),
    /// which a retry may get past, rather than the submission's.
    #[serde(default)]
    pub tool_failed: bool,
    /// Its run's id, ms to ready and image, once it started (for its report).
    pub run: String,
    /// ms from nothing to every service ready.
    pub up_ms: u128,
    /// The image its hosts ran.
    pub image: String,
    /// Where it ran: in place on a running stack of the design, or fresh (and why).
    #[serde(default)]
    pub on: Option<crate::run::GradedOn>,
}

/// A class's exit status, for `grade` and `merge` alike: 0 every submission
/// graded (whatever its verdicts); 1 one could not be because of what it
/// holds, which a retry repeats; 2 stackproof itself failed on one (the
/// engine, the image), which a retry may get past.
pub fn exit_status(graded: &[Graded]) -> u8 {
    if graded.iter().any(|g| g.tool_failed) {
        2
    } else if graded.iter().any(|g| g.error.is_some()) {
        1
    } else {
        0
    }
}

/// Runs `design` (a loaded design, and the name or folder it was loaded
/// from) with one submission's files (its install scripts run first) and
/// the claims of `only` (all when empty), the way `check --config` does:
/// on a running stack of `pool` (the design's) when `in_place` allows it
/// and the stack can take the files, otherwise on a fresh stack of its own
/// (see [`crate::run::Runner::users_files`]). Stacks it is done with go to
/// the pool's removals, so the next submission starts meanwhile.
pub async fn grade_one(
    design: &Design,
    located_as: &str,
    only: &[String],
    sub: &Submission,
    pool: &crate::run::Runner,
    in_place: bool,
) -> Graded {
    let mut graded = Graded {
        name: sub.name.clone(),
        mapping: sub.notes.clone(),
        outcomes: Vec::new(),
        error: None,
        tool_failed: false,
        run: String::new(),
        up_ms: 0,
        image: String::new(),
        on: None,
    };
    // Files of servers this design does not run are said, not graded.
    let mut configs = sub.configs.clone();
    configs.retain(|c| {
        let runs = !config::hosts_running(design, &c.server).is_empty();
        if !runs {
            graded.mapping.push(format!(
                "{}: not graded, no host of {} runs {}",
                c.path.display(),
                design.name,
                c.server
            ));
        }
        runs
    });
    if configs.is_empty() && sub.scripts.is_empty() {
        graded.error = Some(format!("nothing to grade: {}", sub.notes.join("; ")));
        return graded;
    }
    let plan = crate::run::Plan::new(located_as)
        .on_platform(design.fixtures.asked_platform().map(String::from))
        .with_only(only.to_vec())
        .with_users_files(configs, sub.scripts.clone(), None, Vec::new());
    let prepared = match plan.prepare().await {
        Ok(p) => p,
        Err(e) => {
            graded.tool_failed = e.is_stackproofs_own();
            graded.error = Some(e.chain());
            return graded;
        }
    };
    graded
        .mapping
        .extend(prepared.script_report().iter().cloned());
    graded.mapping.extend(prepared.mapping().iter().cloned());
    match pool.users_files(&prepared, in_place, |_| {}).await {
        Ok(ran) => {
            (graded.run, graded.up_ms, graded.image) = (ran.run, ran.up_ms, ran.image);
            graded.outcomes = ran.outcomes;
            graded.on = Some(ran.on);
        }
        Err(e) if e.is_stackproofs_own() => {
            graded.tool_failed = true;
            graded.error = Some(format!("stackproof could not run it: {}", e.chain()));
        }
        Err(e) => graded.error = Some(refusal(&prepared, sub, &e)),
    }
    graded
}

/// Why a submission's servers refused to start: the server's first
/// complaint, the known fix, then the whole of it (the table's note).
fn refusal(prepared: &crate::run::Prepared, sub: &Submission, e: &crate::error::Error) -> String {
    let full = prepared.explain(e);
    // The table's note: the server's first complaint, then the whole of it.
    let first = full
        .lines()
        .find(|l| {
            l.contains("[ALERT]") && !l.contains("Fatal errors") && !l.contains("Error(s) found")
        })
        .map(|l| l.split("] : ").skip(1).collect::<Vec<_>>().join("] : "))
        .unwrap_or_else(|| full.lines().next().unwrap_or("").to_string());
    let file = sub
        .configs
        .first()
        .or(sub.scripts.first())
        .and_then(|c| c.path.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut why = format!("{file} refused: {first}");
    for h in prepared.hints() {
        let _ = write!(why, "; instead: {h}");
    }
    let _ = write!(why, "\n{full}");
    why
}

/// How many submissions to run at once, and why: the memory a stack of
/// `design` takes (a measured ~150 MiB a host, with margin) against what the
/// machine has available, and no more than its cores (timing claims such as
/// failover outages need a core each to mean anything).
pub fn parallelism(design: &Design) -> (usize, String) {
    const PER_HOST_MIB: u64 = 250;
    let available_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(2048);
    let per_stack = PER_HOST_MIB * design.spec.hosts.len().max(1) as u64;
    let by_memory = ((available_mib / 2) / per_stack).max(1) as usize;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let n = by_memory.min(cores).max(1);
    (
        n,
        format!(
            "{n} at once: half of the {available_mib} MiB available fits {by_memory} stacks of {} host(s) at ~{PER_HOST_MIB} MiB each, and the machine has {cores} core(s), one per run so timing claims stay honest",
            design.spec.hosts.len()
        ),
    )
}

fn cell(o: Option<&Outcome>) -> &'static str {
    match o.map(|o| &o.verdict) {
        Some(Verdict::Pass) => "PASS",
        Some(Verdict::Fail(_)) => "FAIL",
        Some(Verdict::Error(_)) => "ERROR",
        Some(Verdict::Skip(_)) => "SKIP",
        Some(Verdict::Flaky(_)) => "FLAKY",
        None => "-",
    }
}

/// A graded class, or one shard of it, as `grade` writes it (`class.json`)
/// and `merge` joins shards of it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ClassReport {
    /// The design, as `grade` was given it (a built-in name or a folder).
    pub design: String,
    /// The claims graded, in order.
    pub claims: Vec<String>,
    /// The points per claim it was scored with (`--points`; empty: not scored).
    #[serde(default)]
    pub points: Points,
    /// Every submission of this shard.
    pub submissions: Vec<Graded>,
}

impl ClassReport {
    /// Reads `class.json` files (shards of one class) as one class: the
    /// same design and claims in each, the submissions of all, by name.
    pub fn merged(paths: &[PathBuf]) -> Result<ClassReport> {
        let mut all: Option<ClassReport> = None;
        for p in paths {
            let text = std::fs::read_to_string(p).map_err(|source| Error::Fixture {
                path: p.clone(),
                source,
            })?;
            let shard: ClassReport =
                serde_json::from_str(&text).map_err(|e| Error::InvalidFixture {
                    path: p.clone(),
                    detail: format!("not a class.json written by `stackproof grade` ({e})"),
                })?;
            match &mut all {
                None => all = Some(shard),
                Some(a) if a.design == shard.design && a.claims == shard.claims => {
                    if a.points != shard.points {
                        return Err(Error::InvalidFixture {
                            path: p.clone(),
                            detail: format!(
                                "scored with other points than the first shard ({} against {}): merge shards graded with one points file",
                                points_words(&shard.points),
                                points_words(&a.points)
                            ),
                        });
                    }
                    a.submissions.extend(shard.submissions)
                }
                Some(a) => {
                    return Err(Error::InvalidFixture {
                        path: p.clone(),
                        detail: format!(
                            "graded {} on [{}], the first shard {} on [{}]: merge shards of one class, graded alike",
                            shard.design,
                            shard.claims.join(", "),
                            a.design,
                            a.claims.join(", ")
                        ),
                    });
                }
            }
        }
        let mut all = all.ok_or_else(|| Error::InvalidFixture {
            path: PathBuf::from("class.json"),
            detail: "no class.json given".into(),
        })?;
        all.submissions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// One JUnit file: a `<testsuite>` per graded submission.
    pub fn junit(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
        for g in &self.submissions {
            if let Some(e) = &g.error {
                // Not graded: one test case in error, with the reason.
                let esc = crate::html::esc;
                let _ = write!(
                    x,
                    "<testsuite name=\"stackproof.{0}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0\">\n  <testcase classname=\"{0}\" name=\"graded\"><error message=\"{1}\">{1}</error></testcase>\n</testsuite>\n",
                    esc(&g.name),
                    esc(e.lines().next().unwrap_or(""))
                );
                continue;
            }
            x.push_str(&crate::report::junit_suite(&crate::report::RunReport {
                design: &g.name,
                platform: "",
                run: &g.run,
                up_ms: g.up_ms,
                image_built: false,
                image: &g.image,
                claims: &g.outcomes,
                versions: &[],
            }));
        }
        x.push_str("</testsuites>\n");
        x
    }
}

/// Points in a message: `a.b = 2, a.c = 5`, or "none".
fn points_words(points: &Points) -> String {
    if points.is_empty() {
        return "none".into();
    }
    points
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each submission's score under `points`, or none when it is empty.
fn scores(design: &Design, points: &Points, graded: &[Graded]) -> Vec<Option<points::Score>> {
    let claims: Vec<String> = design.claims.iter().map(|c| c.id.clone()).collect();
    graded
        .iter()
        .map(|g| (!points.is_empty()).then(|| points::score(points, &claims, g)))
        .collect()
}

/// The class as one self-contained HTML page: the class's pass rate per
/// claim on top (which sentence the class got wrong most), then one row per
/// submission, one cell per claim coloured by verdict, each submission
/// linking to its own report (`<name>.html`, beside it); a click on a
/// column's head sorts by it.
pub fn class_html(design: &Design, points: &Points, graded: &[Graded]) -> String {
    use crate::html::esc;
    let prefix = format!("{}.", design.name);
    let short = |id: &str| id.trim_start_matches(&prefix).to_string();
    let ran: Vec<&Graded> = graded.iter().filter(|g| g.error.is_none()).collect();
    let mut h = format!(
        "<h1>stackproof grade {}</h1><div class=\"facts\">{}<br>{} submission(s), {} graded, {} could not be graded</div>",
        esc(&design.name),
        esc(&design.spec.summary),
        graded.len(),
        ran.len(),
        graded.len() - ran.len()
    );
    // The class's pass rate per claim, the worst first.
    let mut rates: Vec<(String, usize)> = design
        .claims
        .iter()
        .map(|c| {
            let held = ran
                .iter()
                .filter(|g| {
                    g.outcomes
                        .iter()
                        .any(|o| o.id == c.id && o.verdict.passed())
                })
                .count();
            (c.id.clone(), held)
        })
        .collect();
    rates.sort_by_key(|(_, held)| *held);
    h.push_str("<h2>Pass rate per claim</h2><table class=\"rates\"><tr><th>claim</th><th>says</th><th>held</th></tr>");
    for (id, held) in &rates {
        let says = design
            .claims
            .iter()
            .find(|c| &c.id == id)
            .map(|c| c.says.as_str())
            .unwrap_or("");
        let pct = if ran.is_empty() {
            0
        } else {
            held * 100 / ran.len()
        };
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"{}\">{held}/{} ({pct} %)</td></tr>",
            esc(&short(id)),
            esc(says),
            if *held == ran.len() { "PASS" } else { "FAIL" },
            ran.len()
        );
    }
    let scores = scores(design, points, graded);
    h.push_str(
        "</table><h2>Submissions</h2><table id=\"class\"><tr><th>submission</th><th>held</th>",
    );
    if !points.is_empty() {
        h.push_str("<th title=\"points earned of the points it could earn\">score</th>");
    }
    for c in &design.claims {
        let _ = write!(
            h,
            "<th title=\"{}\">{}</th>",
            esc(&c.says),
            esc(&short(&c.id))
        );
    }
    h.push_str("<th>why not graded</th></tr>");
    for (g, score) in graded.iter().zip(&scores) {
        let held = g.outcomes.iter().filter(|o| o.verdict.passed()).count();
        let name = if g.error.is_none() {
            format!("<a href=\"{0}.html\">{0}</a>", esc(&g.name))
        } else {
            esc(&g.name)
        };
        let _ = write!(h, "<tr><td>{name}</td><td>{held}</td>");
        if let Some(score) = score {
            let _ = write!(h, "<td>{score}</td>");
        }
        for c in &design.claims {
            let o = g.outcomes.iter().find(|o| o.id == c.id);
            let v = cell(o);
            let why = o
                .and_then(|o| match &o.verdict {
                    Verdict::Fail(f) | Verdict::Error(f) => Some(f.summary.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let _ = write!(h, "<td class=\"v {v}\" title=\"{}\">{v}</td>", esc(&why));
        }
        let _ = write!(
            h,
            "<td>{}</td></tr>",
            esc(g
                .error
                .as_deref()
                .and_then(|e| e.lines().next())
                .unwrap_or(""))
        );
    }
    h.push_str("</table>");
    h.push_str(CLASS_SORT);
    crate::html::wrap(&format!("stackproof grade {}", design.name), &h)
}

/// Sorts the class table by the column whose head is clicked.
const CLASS_SORT: &str = r#"<script>
document.querySelectorAll('#class th').forEach(function(th,col){
  th.style.cursor='pointer';
  th.addEventListener('click',function(){
    var table=th.closest('table'),rows=[].slice.call(table.rows,1);
    var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
    rows.sort(function(a,b){var x=a.cells[col].textContent,y=b.cells[col].textContent;
      var n=parseFloat(x)-parseFloat(y);var c=isNaN(n)?x.localeCompare(y):n;return asc?c:-c;});
    rows.forEach(function(r){table.appendChild(r);});
  });
});
</script>"#;

/// The class's table as Markdown: one row per submission, one column per claim.
pub fn summary_markdown(design: &Design, points: &Points, graded: &[Graded]) -> String {
    let prefix = format!("{}.", design.name);
    let short = |id: &str| id.trim_start_matches(&prefix).to_string();
    let scored = !points.is_empty();
    let mut md = format!(
        "# {}: {} submission(s)\n\n| submission | held | {}{} | notes |\n|---|---|{}{}---|\n",
        design.name,
        graded.len(),
        if scored { "score | " } else { "" },
        design
            .claims
            .iter()
            .map(|c| format!("`{}`", short(&c.id)))
            .collect::<Vec<_>>()
            .join(" | "),
        if scored { "---|" } else { "" },
        "---|".repeat(design.claims.len())
    );
    let scores = scores(design, points, graded);
    for (g, score) in graded.iter().zip(&scores) {
        let held = g.outcomes.iter().filter(|o| o.verdict.passed()).count();
        let cells: Vec<&str> = design
            .claims
            .iter()
            .map(|c| cell(g.outcomes.iter().find(|o| o.id == c.id)))
            .collect();
        let notes: Vec<String> = g
            .error
            .iter()
            .map(|e| e.lines().next().unwrap_or("").to_string())
            .chain(
                g.mapping
                    .iter()
                    .flat_map(|m| m.lines())
                    .filter(|l| {
                        l.contains("warning:")
                            || l.contains(" files; graded")
                            || (l.starts_with("no ") && g.error.is_none())
                    })
                    .map(|l| l.trim().to_string()),
            )
            .collect();
        let _ = writeln!(
            md,
            "| {} | {held}/{} | {}{} | {} |",
            g.name,
            design.claims.len(),
            score.map(|s| format!("{s} | ")).unwrap_or_default(),
            cells.join(" | "),
            notes.join("<br>").replace('|', "\\|")
        );
    }
    md
}

/// The class's table as CSV (submission, then one column per claim ID, then the error).
pub fn summary_csv(design: &Design, points: &Points, graded: &[Graded]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut csv = format!(
        "submission,{}{},error\n",
        if points.is_empty() { "" } else { "score,max," },
        design
            .claims
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>()
            .join(",")
    );
    let scores = scores(design, points, graded);
    for (g, score) in graded.iter().zip(&scores) {
        let cells: Vec<&str> = design
            .claims
            .iter()
            .map(|c| cell(g.outcomes.iter().find(|o| o.id == c.id)))
            .collect();
        let _ = writeln!(
            csv,
            "{},{}{},{}",
            quote(&g.name),
            score
                .map(|s| format!("{},{},", s.earned, s.max))
                .unwrap_or_default(),
            cells.join(","),
            quote(
                g.error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("")
            )
        );
    }
    csv
}

#[cfg(test)]
mod naming_tests {
    #[test]
    fn a_file_named_as_the_curriculum_names_it_is_read_by_its_content() {
        let dir = std::env::temp_dir().join(format!("sp-grade-names-{}", std::process::id()));
        let sub = dir.join("student-1").join("0x10-https_ssl");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join("1-haproxy_ssl_termination"),
            "global\n\tmaxconn 256\n\nfrontend www-https\n\tbind *:443 ssl crt /etc/haproxy/certs/www.pem\n\tdefault_backend web\n\nbackend web\n\tbalance roundrobin\n\tserver web-01 10.0.0.11:80 check\n",
        )
        .unwrap();
        std::fs::write(
            sub.join("0-world_wide_web"),
            "#!/usr/bin/env bash\ndig www.holberton.online\n",
        )
        .unwrap();
        std::fs::write(sub.join("README.md"), "# HTTPS\n").unwrap();
        let found = super::find(&[dir.join("student-1")]).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let s = &found[0];
        assert_eq!(s.configs.len(), 1, "{s:?}");
        assert_eq!(s.configs[0].server, "haproxy");
        assert!(s.configs[0].path.ends_with("1-haproxy_ssl_termination"));
        assert!(
            s.notes
                .iter()
                .any(|n| n.contains("read as haproxy.cfg by its content")),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn each_server_is_told_by_what_only_its_files_say() {
        assert_eq!(
            super::registry::sniff("vrrp_instance VI_1 {\n}"),
            Some("keepalived")
        );
        assert_eq!(
            super::registry::sniff("global:\n  scrape_interval: 15s\nscrape_configs:\n"),
            Some("prometheus")
        );
        assert_eq!(
            super::registry::sniff("*filter\n:INPUT DROP [0:0]\nCOMMIT\n"),
            Some("iptables")
        );
        assert_eq!(super::registry::sniff("server {\n  listen 80;\n}\n"), None);
    }

    /// A cluster (ci/kubernetes/) reads these exit statuses: its Job
    /// retries what a retry may fix and never what it repeats.
    #[test]
    fn the_grading_job_retries_stackproofs_failures_and_never_a_submissions() {
        use super::{Graded, exit_status};
        use yaml_rust2::{Yaml, YamlLoader};
        let manifest = |name: &str| -> Yaml {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("ci/kubernetes")
                .join(name);
            let text = std::fs::read_to_string(&path).unwrap();
            YamlLoader::load_from_str(&text).unwrap().remove(0)
        };
        let job = manifest("grade-class.yaml");
        let spec = &job["spec"];
        assert!(spec["backoffLimitPerIndex"].as_i64().unwrap() >= 1);
        let rules = spec["podFailurePolicy"]["rules"].as_vec().unwrap();
        let never_retried: Vec<i64> = rules
            .iter()
            .filter(|r| r["action"].as_str() == Some("FailIndex"))
            .flat_map(|r| {
                assert_eq!(r["onExitCodes"]["containerName"].as_str(), Some("grade"));
                assert_eq!(r["onExitCodes"]["operator"].as_str(), Some("In"));
                r["onExitCodes"]["values"].as_vec().unwrap().clone()
            })
            .map(|v| v.as_i64().unwrap())
            .collect();
        let submission = |error: Option<&str>, tool_failed: bool| Graded {
            name: "amy".into(),
            mapping: vec![],
            outcomes: vec![],
            error: error.map(String::from),
            tool_failed,
            run: String::new(),
            up_ms: 0,
            image: String::new(),
            on: None,
        };
        let refused = exit_status(&[submission(Some("haproxy.cfg refused: ..."), false)]);
        let engine_lost = exit_status(&[submission(Some("the engine went away"), true)]);
        let graded = exit_status(&[submission(None, false)]);
        assert_eq!(graded, 0);
        assert!(
            never_retried.contains(&(refused as i64)),
            "{never_retried:?}"
        );
        assert!(
            !never_retried.contains(&(engine_lost as i64)),
            "{never_retried:?}"
        );
        // The image cache is loaded before grading.
        let pod = &job["spec"]["template"]["spec"];
        let grade = pod["containers"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str() == Some("grade"))
            .unwrap();
        let command = grade["args"][0].as_str().unwrap();
        assert!(
            command.starts_with("stackproof images --load /images && "),
            "{command}"
        );
    }
}
