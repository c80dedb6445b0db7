//! The reports a CI system and a person read: JUnit against its schema,
//! the HTML page in Chromium, merged shards, listings cut short.

use super::*;

#[test]
fn junit_reports_validate_against_the_schema_jenkins_and_gitlab_read() {
    use stackproof::report::{RunReport, write_junit};
    use stackproof::{Failure, Outcome, Verdict};
    let outcome = |id: &str, verdict: Verdict| Outcome {
        id: id.into(),
        says: "a sentence with <markup> & \"quotes\"".into(),
        verdict,
        evidence: "measured: 5 of 5".into(),
        millis: 1234,
        figures: vec![("outage (ms)".into(), 305.0)],
        timelines: Vec::new(),
        budgets: Vec::new(),
    };
    let claims = vec![
        outcome("d.lb.round_robin", Verdict::Pass),
        outcome(
            "d.lb.health_check",
            Verdict::Fail(Failure::new(
                "HAProxy did not eject it",
                "evidence \u{1b}[31mred\u{1b}[0m",
            )),
        ),
        outcome(
            "d.db.replication",
            Verdict::Error(Failure::not_measured("Prometheus did not answer", "")),
        ),
        outcome(
            "d.issue.restart_downtime",
            Verdict::Skip("we deploy with reloads only".into()),
        ),
    ];
    let dir = std::env::temp_dir().join(format!("sp-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("report.xml");
    write_junit(
        &file,
        &RunReport {
            design: "d",
            platform: "debian-13",
            run: "r-1",
            up_ms: 1,
            image_built: false,
            image: "img",
            claims: &claims,
            versions: &[],
        },
    )
    .unwrap();
    let xml = std::fs::read_to_string(&file).unwrap();
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/junit-10.xsd");
    let out = xmllint_against(&schema, &file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success(),
        "the JUnit report does not validate:\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    for part in [
        "<failure message=\"HAProxy did not eject it\"",
        "<error message=\"Prometheus did not answer\"",
        "<skipped message=\"we deploy with reloads only\"/>",
        "failures=\"1\" errors=\"1\" skipped=\"1\"",
    ] {
        assert!(xml.contains(part), "`{part}` missing:\n{xml}");
    }
}

/// A stackproof command ended with exit 0; its output otherwise.
fn assert_exit_0(out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `xmllint --schema schema file`, in the tools container: its output.
fn xmllint_against(schema: &std::path::Path, file: &std::path::Path) -> std::process::Output {
    let (schema, file) = (schema.to_str().unwrap(), file.to_str().unwrap());
    in_tools_container(
        &[
            std::path::Path::new(schema).parent().unwrap(),
            std::path::Path::new(file).parent().unwrap(),
        ],
        "xmllint",
        &["--noout", "--schema", schema, file],
    )
}

/// `page` as headless Chromium builds it (script run), and a screenshot of
/// it in `dir` at `size` ("width,height"), with the screenshot's output.
/// Chromium runs in the tools container, with `dir` mounted and no network.
fn in_chromium(
    page: &std::path::Path,
    dir: &std::path::Path,
    size: &str,
) -> (String, std::path::PathBuf, std::process::Output) {
    let home = format!("HOME={}", dir.display());
    let window = format!("--window-size={size}");
    let url = format!("file://{}", page.display());
    let headless = |extra: &[&str]| {
        let mut args = vec![
            home.as_str(),
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            window.as_str(),
        ];
        args.extend(extra);
        args.push(url.as_str());
        in_tools_container(&[dir], "env", &args)
    };
    let dom = String::from_utf8_lossy(&headless(&["--dump-dom"]).stdout).into_owned();
    let png = dir.join("page.png");
    let shot = headless(&[&format!("--screenshot={}", png.display())]);
    (dom, png, shot)
}

#[test]
fn the_html_report_renders_in_chromium_with_the_diagram_and_every_claim() {
    let dir = outside_the_repo("chromium");
    let html = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["check", "simple_web", "--html"])
        .arg(&html)
        .output()
        .unwrap();
    assert_exit_0(&out);
    let (dom, png, shot) = in_chromium(&html, &dir, "1280,2400");
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    // Keep the picture for docs/ when asked (STACKPROOF_SCREENSHOT=docs/screenshot-simple_web.png).
    if let Some(keep) = std::env::var_os("STACKPROOF_SCREENSHOT") {
        let _ = std::fs::copy(&png, keep);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        dom.contains("class=\"topology\""),
        "the diagram is not in the rendered page: {dom}"
    );
    for id in stackproof::Design::load("simple_web")
        .map(|d| d.claims().to_vec())
        .unwrap()
        .iter()
        .map(|c| c.id().to_string())
    {
        assert!(dom.contains(&id), "claim {id} is not in the rendered page");
    }
    assert!(
        size > 20_000,
        "the screenshot is {size} bytes: nothing was drawn ({})",
        String::from_utf8_lossy(&shot.stderr)
    );
}

/// `grade --html`: the class page as a browser builds it, with its rates,
/// its rows and a screenshot that is not blank.
#[test]
fn the_class_page_renders_in_chromium_with_every_submission() {
    let dir = outside_the_repo("class-html");
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/haproxy");
    for (student, file) in [
        ("ana", "lb_debian_default.cfg"),
        ("bea", "lb_balance_source.cfg"),
    ] {
        std::fs::create_dir_all(dir.join(student)).unwrap();
        std::fs::copy(configs.join(file), dir.join(student).join("haproxy.cfg")).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args([
            "grade",
            "distributed",
            "ana",
            "bea",
            "--out",
            "grades",
            "--html",
        ])
        .args([
            "--claim",
            "distributed.lb.round_robin",
            "--claim",
            "distributed.dns.www_to_lb",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_exit_0(&out);
    let page = dir.join("grades/class.html");
    let (dom, png, shot) = in_chromium(&page, &dir, "1280,900");
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    // Keep the picture for docs/ when asked (STACKPROOF_SCREENSHOT_CLASS=docs/screenshots/class.png).
    if let Some(keep) = std::env::var_os("STACKPROOF_SCREENSHOT_CLASS") {
        let _ = std::fs::copy(&png, keep);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(dom.contains("Pass rate per claim"), "{dom}");
    assert!(dom.contains("<a href=\"ana.html\">ana</a>"), "{dom}");
    assert!(dom.contains("<a href=\"bea.html\">bea</a>"), "{dom}");
    // round_robin: ana holds, bea (balance source) does not; www_to_lb both.
    assert!(
        dom.contains(">1/2 (50 %)<") && dom.contains(">2/2 (100 %)<"),
        "{dom}"
    );
    assert!(
        size > 10_000,
        "the screenshot is {size} bytes: nothing was drawn ({})",
        String::from_utf8_lossy(&shot.stderr)
    );
}

#[test]
fn a_mutant_run_draws_its_broken_part_red_in_the_html_report() {
    let dir = outside_the_repo("mutant-html");
    let html = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args([
            "check",
            "simple_web",
            "--mutant",
            "second_server",
            "--claim",
            "simple_web.issue.spof",
            "--html",
        ])
        .arg(&html)
        .output()
        .unwrap();
    let page = std::fs::read_to_string(&html).unwrap_or_default();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The mutant's second server is in the picture, and the host the broken claim concerns is red.
    assert!(page.contains("data-host=\"server-2\""), "{page}");
    assert!(page.contains("fill=\"#f8d7da\""), "{page}");
}

#[test]
fn a_listing_cut_short_by_its_reader_ends_quietly() {
    use std::io::Read as _;
    // As `stackproof list scale_up | head -1`: the reader is gone before the
    // listing is written (reading the design takes longer than closing the pipe).
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["list", "scale_up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status:?}: {stderr}");
}

#[test]
fn a_ci_matrixs_reports_merge_into_one_page_one_junit_file_and_one_summary() {
    let dir = std::env::temp_dir().join(format!("sp-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Two shards, as a matrix runs them: one design as it is, one broken.
    for (design, extra) in [
        ("simple_web", &[][..]),
        ("simple_web_nginx", &["--mutant", "no_php_location"][..]),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
            .args(["check", design, "--json"])
            .arg(dir.join(format!("{design}.json")))
            .args(["--claim", &format!("{design}.dns.www_a_record")])
            .args(["--claim", &format!("{design}.app.dynamic_by_php")])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.code().is_some_and(|c| c < 2),
            "{design}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .arg("merge")
        .arg(dir.join("simple_web.json"))
        .arg(dir.join("simple_web_nginx.json"))
        .arg("--html")
        .arg(dir.join("all.html"))
        .arg("--junit")
        .arg(dir.join("all.xml"))
        .arg("--markdown")
        .arg(dir.join("all.md"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let html = std::fs::read_to_string(dir.join("all.html")).unwrap_or_default();
    let md = std::fs::read_to_string(dir.join("all.md")).unwrap_or_default();
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/junit-10.xsd");
    let lint = xmllint_against(&schema, &dir.join("all.xml"));
    std::fs::remove_dir_all(&dir).unwrap();
    // The worst shard decides: the mutant broke a claim.
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("simple_web: 2 held, 0 broken")
            && stdout.contains("simple_web_nginx: 1 held, 1 broken"),
        "{stdout}"
    );
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(
        html.contains("<section id=\"simple_web\">")
            && html.contains("<section id=\"simple_web_nginx\">"),
        "{html}"
    );
    assert_eq!(html.matches("<svg").count(), 2, "a topology per design");
    assert!(html.contains("simple_web_nginx.app.dynamic_by_php"));
    assert!(
        md.contains("## stackproof check simple_web:")
            && md.contains("## stackproof check simple_web_nginx:"),
        "{md}"
    );
}

/// A pull request's question, `stackproof diff BASE.json HEAD.json`: two
/// runs of the design are the same (exit 0); a mutant's run is a
/// regression, named (exit 1), in words and as Markdown.
#[test]
fn diff_names_what_a_mutant_broke_and_nothing_between_two_runs_of_the_design() {
    let dir = outside_the_repo("diff");
    let bin = env!("CARGO_BIN_EXE_stackproof");
    let check = |name: &str, extra: &[&str]| {
        let out = Command::new(bin)
            .args(["check", "simple_web", "--json"])
            .arg(dir.join(name))
            .args(extra)
            .output()
            .unwrap();
        assert!(
            dir.join(name).exists(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    check("base.json", &[]);
    check("again.json", &[]);
    check("mutant.json", &["--mutant", "static_through_php"]);
    let diff = |head: &str| {
        Command::new(bin)
            .arg("diff")
            .arg(dir.join("base.json"))
            .arg(dir.join(head))
            .arg("--markdown")
            .arg(dir.join("diff.md"))
            .output()
            .unwrap()
    };
    let same = diff("again.json");
    let said = String::from_utf8_lossy(&same.stdout).into_owned();
    assert_eq!(same.status.code(), Some(0), "{said}");
    assert!(said.contains("0 claim(s) moved"), "{said}");
    let broke = diff("mutant.json");
    let said = String::from_utf8_lossy(&broke.stdout).into_owned();
    let md = std::fs::read_to_string(dir.join("diff.md")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(broke.status.code(), Some(1), "{said}");
    assert!(
        said.contains("REGRESSED  simple_web.web.static_by_apache PASS -> FAIL"),
        "{said}"
    );
    assert!(
        md.contains("| 🔴 `simple_web.web.static_by_apache` | PASS | FAIL |"),
        "{md}"
    );
}

/// A claim made to flake on purpose (it holds every other time) comes out
/// FLAKY over repeats, with its counts and its first failure, fails the
/// run's exit code, and is a `<flakyFailure>` in JUnit; a steady claim
/// beside it stays PASS.
#[tokio::test(flavor = "multi_thread")]
async fn a_claim_that_flakes_on_purpose_is_flaky_over_repeats() {
    use stackproof::{Claim, Event, Verdict, run};
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    fn every_other_time<'a>(
        _: &'a Stack,
        _: &'a stackproof::Params,
        _: &'a stackproof::Recorder,
    ) -> futures::future::BoxFuture<'a, stackproof::CheckResult> {
        Box::pin(async {
            let n = CALLS.fetch_add(1, Ordering::SeqCst);
            stackproof::ensure(n.is_multiple_of(2), format!("call {n} was odd"), "")?;
            Ok(format!("call {n} was even"))
        })
    }
    let prepared = stackproof::Plan::new("simple_web")
        .with_claims(vec![Claim::rust(
            "simple_web.test.flaky",
            "holds every other time",
            "its own counter is even",
            every_other_time,
        )])
        .with_only(vec![
            "simple_web.dns.www_a_record".into(),
            "simple_web.test.flaky".into(),
        ])
        .prepare()
        .await
        .unwrap();
    let ran = run::Runner::new(prepared)
        .run(run::Schedule::Repeated(4), |_: Event<'_>| {})
        .await
        .unwrap();
    let (folded, stack) = (ran.outcomes, ran.stack);
    assert!(folded[0].verdict.passed(), "{:?}", folded[0].verdict);
    match &folded[1].verdict {
        Verdict::Flaky(f) => {
            assert_eq!((f.held, f.runs), (2, 4));
            assert_eq!(f.first.summary, "call 1 was odd");
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(stackproof::report::exit_code(&folded), 1);
    let junit = outside_the_repo("flaky").join("junit.xml");
    let versions = Vec::new();
    stackproof::report::write_junit(
        &junit,
        &stackproof::report::RunReport {
            design: "simple_web",
            platform: "",
            run: stack.run_id(),
            up_ms: 0,
            image_built: false,
            image: "",
            claims: &folded,
            versions: &versions,
        },
    )
    .unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    std::fs::remove_dir_all(junit.parent().unwrap()).unwrap();
    assert!(
        xml.contains("<flakyFailure message=\"call 1 was odd\""),
        "{xml}"
    );
}
