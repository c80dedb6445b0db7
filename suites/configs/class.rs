//! A class graded, an install script run, and the reports a user reads.

use std::process::Command;

use crate::{check_with, run_with_report};

#[test]
fn a_class_is_graded_one_run_per_submission_and_one_broken_one_stops_nothing() {
    let class = std::env::temp_dir().join(format!("sp-class-{}", std::process::id()));
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/haproxy");
    for (student, file) in [
        ("alice/0-load_balancer", Some("lb_debian_default.cfg")),
        ("bob", Some("lb_balance_source.cfg")),
        ("carol", Some("lb_1x_directives.cfg")),
        ("dave", None),
    ] {
        let dir = class.join(student);
        std::fs::create_dir_all(&dir).unwrap();
        match file {
            Some(f) => std::fs::copy(configs.join(f), dir.join("haproxy.cfg"))
                .map(drop)
                .unwrap(),
            None => std::fs::write(dir.join("README.md"), "forgot the file").unwrap(),
        }
    }
    // alice also hands in her keepalived file, which `distributed` has no use for.
    std::fs::copy(
        configs.join("../keepalived/lb-01.conf"),
        class.join("alice/keepalived.conf"),
    )
    .unwrap();
    // frank's databases run Debian's default server file, found by name.
    std::fs::create_dir_all(class.join("frank/mysql")).unwrap();
    std::fs::copy(
        configs.join("lb_debian_default.cfg"),
        class.join("frank/haproxy.cfg"),
    )
    .unwrap();
    std::fs::copy(
        configs.join("../mariadb/50-server.cnf"),
        class.join("frank/mysql/50-server.cnf"),
    )
    .unwrap();
    // erin hands in the install script only.
    std::fs::create_dir_all(class.join("erin")).unwrap();
    std::fs::copy(
        configs.join("../scripts/1-install_load_balancer"),
        class.join("erin/1-install_load_balancer"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args([
            "grade",
            "distributed",
            "alice",
            "bob",
            "carol",
            "dave",
            "erin",
            "frank",
            "--out",
            "grades",
        ])
        .current_dir(&class)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let csv = std::fs::read_to_string(class.join("grades/summary.csv")).unwrap_or_default();
    let md = std::fs::read_to_string(class.join("grades/summary.md")).unwrap_or_default();
    let alice = std::fs::read_to_string(class.join("grades/alice.txt")).unwrap_or_default();
    std::fs::remove_dir_all(&class).unwrap();
    // Graded, all but the two that could not run (carol's file is refused,
    // dave handed in none): exit 1, and the rows say why.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("could not be graded"), "{stdout}");
    assert!(
        stdout.contains("at once:"),
        "says how many at once and why: {stdout}"
    );
    let row = |name: &str| {
        csv.lines()
            .find(|l| l.starts_with(&format!("\"{name}\"")))
            .unwrap_or("")
            .to_string()
    };
    let header: Vec<&str> = csv.lines().next().unwrap_or("").split(',').collect();
    let col = |id: &str| header.iter().position(|h| *h == id).unwrap();
    let cell = |name: &str, id: &str| row(name).split(',').nth(col(id)).unwrap_or("").to_string();
    assert_eq!(cell("alice", "distributed.lb.round_robin"), "PASS", "{csv}");
    assert_eq!(cell("bob", "distributed.lb.round_robin"), "FAIL", "{csv}");
    assert_eq!(cell("bob", "distributed.db.replication"), "PASS", "{csv}");
    assert!(row("carol").contains("reqadd"), "{csv}");
    assert!(row("dave").contains("no haproxy.cfg found"), "{csv}");
    assert!(md.contains("| alice | 14/14 |"), "{md}");
    assert_eq!(
        cell("erin", "distributed.lb.round_robin"),
        "PASS",
        "{csv}\n{stdout}"
    );
    assert!(
        alice.contains("not graded, no host of distributed runs keepalived"),
        "{alice}"
    );
    assert_eq!(cell("frank", "distributed.lb.round_robin"), "PASS", "{csv}");
    assert_eq!(cell("frank", "distributed.db.replication"), "FAIL", "{csv}");
}

#[test]
fn an_install_script_runs_harmlessly_and_the_file_it_wrote_is_checked() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs/scripts/1-install_load_balancer");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.args([
        "check",
        "distributed",
        "--claim",
        "distributed.lb.round_robin",
        "--script",
    ])
    .arg(format!("haproxy={}", script.display()));
    let (out, v) = run_with_report(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for said in [
        "1-install_load_balancer: apt-get -y install haproxy=2.0.*: skipped",
        "add-apt-repository -y ppa:vbernat/haproxy-2.0: skipped",
        "service haproxy restart: skipped",
        "1-install_load_balancer: wrote /etc/haproxy/haproxy.cfg",
        "server 4211-web-01 100.25.34.211:80 -> server-1",
    ] {
        assert!(stdout.contains(said), "`{said}` missing: {stdout}");
    }
    assert!(v.is("PASS", "distributed.lb.round_robin"), "{stdout}");
}

#[test]
fn the_markdown_summary_colours_the_broken_part_of_the_topology_red() {
    let md = std::env::temp_dir().join(format!("sp-summary-{}.md", std::process::id()));
    let (out, _, _, _) = check_with(
        "distributed",
        "lb_balance_source.cfg",
        &["lb.round_robin", "db.replication"],
        &["--markdown".as_ref(), md.as_os_str()],
    );
    let text = std::fs::read_to_string(&md).unwrap_or_default();
    let _ = std::fs::remove_file(&md);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(text.contains("```mermaid\nflowchart LR"), "{text}");
    // round_robin concerns the backends: red; replication held on them too, but the worst wins.
    assert!(text.contains("style server_1 fill:#f8d7da"), "{text}");
    // ...and the load balancer whose `balance source` broke it.
    assert!(text.contains("style lb_1 fill:#f8d7da"), "{text}");
    assert!(
        text.contains("| ❌ FAIL | `distributed.lb.round_robin`"),
        "{text}"
    );
    assert!(
        text.contains("| ✅ PASS | `distributed.db.replication`"),
        "{text}"
    );
    assert!(
        text.contains("<details><summary><b>FAIL <code>distributed.lb.round_robin</code></b>"),
        "{text}"
    );
}

#[test]
fn the_html_report_is_self_contained_and_shows_the_broken_part_in_red() {
    let html = std::env::temp_dir().join(format!("sp-report-{}.html", std::process::id()));
    let (out, _, _, _) = check_with(
        "distributed",
        "lb_balance_source.cfg",
        &["lb.round_robin", "dns.www_to_lb"],
        &["--html".as_ref(), html.as_os_str()],
    );
    let page = std::fs::read_to_string(&html).unwrap_or_default();
    let _ = std::fs::remove_file(&html);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        page.contains("<svg") && page.contains("class=\"topology\""),
        "{page}"
    );
    for host in ["lb-1", "server-1", "server-2"] {
        assert!(
            page.contains(&format!("data-host=\"{host}\"")),
            "{host}: {page}"
        );
    }
    // The backends of the broken round-robin are red; the claims are listed with their verdicts.
    assert!(page.contains("fill=\"#f8d7da\""), "{page}");
    assert!(
        page.contains(
            "<span class=\"FAIL\">FAIL</span></td><td><code>distributed.lb.round_robin</code>"
        ),
        "{page}"
    );
    assert!(
        page.contains(
            "<span class=\"PASS\">PASS</span></td><td><code>distributed.dns.www_to_lb</code>"
        ),
        "{page}"
    );
    // Self-contained: nothing is fetched.
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http") && !page.contains("@import"),
        "{page}"
    );
}

/// A task that asks for round-robin only is graded on round-robin only:
/// `--claim` picks the table's columns and the claims each run measures.
#[test]
fn a_class_is_graded_on_the_claims_the_task_asks_for() {
    let class = std::env::temp_dir().join(format!("sp-class-claim-{}", std::process::id()));
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/haproxy");
    for (student, file) in [
        ("ann", "lb_debian_default.cfg"),
        ("ben", "lb_balance_source.cfg"),
    ] {
        std::fs::create_dir_all(class.join(student)).unwrap();
        std::fs::copy(configs.join(file), class.join(student).join("haproxy.cfg")).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["grade", "distributed", "ann", "ben", "--out", "grades"])
        .args(["--claim", "distributed.lb.round_robin", "--html"])
        .current_dir(&class)
        .output()
        .unwrap();
    let csv = std::fs::read_to_string(class.join("grades/summary.csv")).unwrap_or_default();
    let page = std::fs::read_to_string(class.join("grades/class.html")).unwrap_or_default();
    let ann = std::fs::read_to_string(class.join("grades/ann.html")).unwrap_or_default();
    std::fs::remove_dir_all(&class).unwrap();
    // The class page: the pass rate per claim, a row per submission linking
    // its own report, cells coloured by verdict.
    assert!(page.contains("Pass rate per claim"), "{page}");
    assert!(page.contains(">1/2 (50 %)<"), "{page}");
    assert!(page.contains("<a href=\"ann.html\">ann</a>"), "{page}");
    assert!(page.contains("class=\"v FAIL\""), "{page}");
    assert!(ann.contains("stackproof check distributed"), "{ann}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0], "submission,distributed.lb.round_robin,error",
        "{csv}"
    );
    assert!(lines[1].starts_with("\"ann\",PASS,"), "{csv}");
    assert!(lines[2].starts_with("\"ben\",FAIL,"), "{csv}");
}

/// `--shard I/N`: a stable slice of the class by name, so N machines share
/// it; `merge` joins the shards' class.json into one table, page and JUnit.
#[test]
fn a_class_graded_in_shards_merges_into_one() {
    let class = std::env::temp_dir().join(format!("sp-class-shard-{}", std::process::id()));
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/haproxy");
    for student in ["amy", "bo", "cy"] {
        std::fs::create_dir_all(class.join(student)).unwrap();
        std::fs::copy(
            configs.join("lb_debian_default.cfg"),
            class.join(student).join("haproxy.cfg"),
        )
        .unwrap();
    }
    let shard = |which: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_stackproof"))
            .args(["grade", "distributed", "cy", "amy", "bo"])
            .args(["--out", &format!("grades-{}", which.replace('/', "-"))])
            .args(["--claim", "distributed.dns.www_to_lb", "--shard", which])
            .current_dir(&class)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (first, second) = (shard("1/2"), shard("2/2"));
    // The same class in one go, to compare with the merged shards.
    let whole = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["grade", "distributed", "cy", "amy", "bo"])
        .args([
            "--out",
            "grades-whole",
            "--claim",
            "distributed.dns.www_to_lb",
        ])
        .current_dir(&class)
        .output()
        .unwrap();
    assert_eq!(whole.status.code(), Some(0));
    let merged = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["merge", "grades-1-2/class.json", "grades-2-2/class.json"])
        .args([
            "--csv", "all.csv", "--html", "all.html", "--junit", "all.xml",
        ])
        .current_dir(&class)
        .output()
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(class.join(f)).unwrap_or_default();
    let (csv, page, junit) = (read("all.csv"), read("all.html"), read("all.xml"));
    let whole_csv = read("grades-whole/summary.csv");
    std::fs::remove_dir_all(&class).unwrap();
    assert!(first.contains("shard 1/2: amy, cy"), "{first}");
    assert!(second.contains("shard 2/2: bo"), "{second}");
    assert_eq!(
        merged.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&merged.stdout),
        String::from_utf8_lossy(&merged.stderr)
    );
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    // Sharded and merged, the class's table is the one graded in one go.
    let sorted = |t: &str| {
        let mut l: Vec<String> = t.lines().map(String::from).collect();
        l.sort();
        l
    };
    pretty_assertions::assert_eq!(sorted(&csv), sorted(&whole_csv));
    for (row, name) in rows.iter().zip(["amy", "bo", "cy"]) {
        assert!(row.starts_with(&format!("\"{name}\",PASS")), "{csv}");
    }
    assert!(page.contains(">3/3 (100 %)<"), "{page}");
    assert_eq!(junit.matches("<testsuite ").count(), 3, "{junit}");
}

/// `--points`: each submission's score beside its verdicts (a PASS earns
/// the claim's points, anything else none; a claim the file does not name
/// is not scored, with a warning), in the CSV, the table, the class page
/// and class.json; `merge` refuses shards scored with other points, and a
/// points file naming a claim the design lacks is refused before any run.
#[test]
fn a_class_is_scored_with_points_and_shards_scored_otherwise_do_not_merge() {
    let class = std::env::temp_dir().join(format!("sp-class-points-{}", std::process::id()));
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/haproxy");
    for (student, file) in [
        ("ann", "lb_debian_default.cfg"),
        ("ben", "lb_balance_source.cfg"),
    ] {
        std::fs::create_dir_all(class.join(student)).unwrap();
        std::fs::copy(configs.join(file), class.join(student).join("haproxy.cfg")).unwrap();
    }
    std::fs::write(
        class.join("points.toml"),
        "\"lb.round_robin\" = 5\n\"distributed.dns.www_to_lb\" = 1\n",
    )
    .unwrap();
    std::fs::write(class.join("other.toml"), "\"lb.round_robin\" = 3\n").unwrap();
    std::fs::write(class.join("wrong.toml"), "\"lb.roundrobin\" = 3\n").unwrap();
    let grade = |points: &str, out: &str, shard: &str| {
        Command::new(env!("CARGO_BIN_EXE_stackproof"))
            .args(["grade", "distributed", "ann", "ben", "--html"])
            .args(["--out", out, "--points", points, "--shard", shard])
            .args(["--claim", "distributed.lb.round_robin"])
            .args(["--claim", "distributed.dns.www_to_lb"])
            .args(["--claim", "distributed.lb.active_active"])
            .current_dir(&class)
            .output()
            .unwrap()
    };
    let refused = grade("wrong.toml", "grades-wrong", "1/1");
    let whole = grade("points.toml", "grades", "1/1");
    let other = grade("other.toml", "grades-other", "2/2");
    let merged = Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .args(["merge", "grades/class.json", "grades-other/class.json"])
        .current_dir(&class)
        .output()
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(class.join(f)).unwrap_or_default();
    let (csv, md, page, json) = (
        read("grades/summary.csv"),
        read("grades/summary.md"),
        read("grades/class.html"),
        read("grades/class.json"),
    );
    std::fs::remove_dir_all(&class).unwrap();
    let said = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    assert_eq!(refused.status.code(), Some(2), "{}", said(&refused));
    assert!(
        said(&refused).contains("no claim `lb.roundrobin` in design distributed"),
        "{}",
        said(&refused)
    );
    let text = said(&whole);
    assert_eq!(whole.status.code(), Some(0), "{text}");
    assert!(
        text.contains("warning: not scored, as the points file names no points for them: distributed.lb.active_active"),
        "{text}"
    );
    // ann's file balances round-robin: 5 + 1; ben's by source: 1 of 6.
    assert!(
        text.contains("score: 6/6") && text.contains("score: 1/6"),
        "{text}"
    );
    assert!(text.contains("submissions an hour"), "{text}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "submission,score,max,distributed.dns.www_to_lb,distributed.lb.round_robin,distributed.lb.active_active,error",
        "{csv}"
    );
    assert!(lines[1].starts_with("\"ann\",6,6,PASS,PASS,"), "{csv}");
    assert!(lines[2].starts_with("\"ben\",1,6,PASS,FAIL,"), "{csv}");
    assert!(
        md.contains("| score |") && md.contains("| 6/6 | PASS | PASS |"),
        "{md}"
    );
    assert!(
        page.contains("<th title=\"points earned of the points it could earn\">score</th>")
            && page.contains("<td>1/6</td>"),
        "{page}"
    );
    assert!(json.contains("\"distributed.lb.round_robin\": 5"), "{json}");
    assert_eq!(other.status.code(), Some(0), "{}", said(&other));
    assert_eq!(merged.status.code(), Some(2), "{}", said(&merged));
    assert!(
        said(&merged).contains("scored with other points than the first shard"),
        "{}",
        said(&merged)
    );
}

/// `classroom`: GitHub Classroom's workflow, written from the points file
/// `grade --points` scores with, so the two cannot disagree. The test reads
/// the workflow as the grader would (each step's `command` and
/// `max-score`), runs every command in a student's repository, and finds
/// the score `grade` gives the same files: balancing by source earns the
/// DNS claim's 1 point of 6.
#[test]
fn the_classroom_workflow_is_written_from_the_points_and_its_commands_score_as_grade_does() {
    let repo = std::env::temp_dir().join(format!("sp-classroom-{}", std::process::id()));
    std::fs::create_dir_all(&repo).unwrap();
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/haproxy");
    std::fs::copy(
        configs.join("lb_balance_source.cfg"),
        repo.join("haproxy.cfg"),
    )
    .unwrap();
    let points = repo.join("points.toml");
    std::fs::write(
        &points,
        "\"lb.round_robin\" = 5\n\"distributed.dns.www_to_lb\" = 1\n",
    )
    .unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_stackproof"));
    let wrote = Command::new(bin)
        .args(["classroom", "distributed", "--points"])
        .arg(&points)
        .args(["--config", "haproxy=haproxy.cfg", "--out", "classroom.yml"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    let yaml = std::fs::read_to_string(repo.join("classroom.yml")).unwrap();
    // Read as GitHub reads it: each command-grader step's command and points.
    let doc = &yaml_rust2::YamlLoader::load_from_str(&yaml).expect("the workflow is YAML")[0];
    let steps = doc["jobs"]["run-autograding-tests"]["steps"]
        .as_vec()
        .expect("steps");
    let graders: Vec<&yaml_rust2::Yaml> = steps
        .iter()
        .filter(|s| s["uses"].as_str() == Some("classroom-resources/autograding-command-grader@v1"))
        .collect();
    let commands: Vec<String> = graders
        .iter()
        .map(|s| {
            s["with"]["command"]
                .as_str()
                .expect("a command")
                .to_string()
        })
        .collect();
    let scores: Vec<u32> = graders
        .iter()
        .map(|s| s["with"]["max-score"].as_i64().expect("points") as u32)
        .collect();
    assert_eq!(commands.len(), 2, "{yaml}");
    assert_eq!(scores.iter().sum::<u32>(), 6, "{yaml}");
    // The reporter sums every grader step, by id.
    let reporter = steps
        .iter()
        .find(|s| s["uses"].as_str() == Some("classroom-resources/autograding-grading-reporter@v1"))
        .expect("the reporter step");
    let ids: Vec<&str> = graders.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        reporter["with"]["runners"].as_str(),
        Some(ids.join(",").as_str()),
        "{yaml}"
    );
    for id in &ids {
        let env = format!("{}_RESULTS", id.to_uppercase());
        let want = format!("${{{{steps.{id}.outputs.result}}}}");
        assert_eq!(
            reporter["env"][env.as_str()].as_str(),
            Some(want.as_str()),
            "{yaml}"
        );
    }
    // Run each as the command grader does: exit 0 earns the step's points.
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut earned = 0;
    let mut ran = Vec::new();
    for (command, points) in commands.iter().zip(&scores) {
        let out = Command::new("sh")
            .args(["-c", command])
            .env("PATH", &path)
            .current_dir(&repo)
            .output()
            .unwrap();
        ran.push(format!("{command}: {:?}", out.status.code()));
        if out.status.success() {
            earned += points;
        }
    }
    // The same files graded with the same points.
    let class = repo.join("class");
    std::fs::create_dir_all(class.join("ben")).unwrap();
    std::fs::copy(repo.join("haproxy.cfg"), class.join("ben/haproxy.cfg")).unwrap();
    let graded = Command::new(bin)
        .args(["grade", "distributed", "ben", "--points"])
        .arg(&points)
        .args([
            "--claim",
            "distributed.dns.www_to_lb",
            "--claim",
            "distributed.lb.round_robin",
        ])
        .current_dir(&class)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&graded.stdout).into_owned();
    std::fs::remove_dir_all(&repo).unwrap();
    assert_eq!(earned, 1, "only the DNS claim holds: {ran:?}");
    assert!(
        said.contains(&format!("score: {earned}/6")),
        "grade scores alike: {said}"
    );
}

/// A class built to catch a submission graded on a running stack coming
/// out otherwise than on a fresh one: a firewall that locks the site out
/// and a database file (forced fresh: MariaDB's one-time init) before a
/// clean submission, a file HAProxy refuses, files that FAIL; graded one
/// at a time in that order, in place and with `--fresh`, the tables are
/// equal claim by claim, and each submission took the path it should.
#[test]
fn a_class_graded_on_running_stacks_comes_out_as_graded_fresh() {
    let class = std::env::temp_dir().join(format!("sp-inplace-{}", std::process::id()));
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let put = |student: &str, name: &str, from: Option<&str>, text: &str| {
        let dir = class.join(student);
        std::fs::create_dir_all(&dir).unwrap();
        match from {
            Some(f) => std::fs::copy(configs.join(f), dir.join(name)).map(drop),
            None => std::fs::write(dir.join(name), text),
        }
        .unwrap();
    };
    let https = Some("haproxy/https_complete.cfg");
    put("a-locked-out", "haproxy.cfg", https, "");
    // SSH only, everything else dropped, on every host with a firewall.
    put(
        "a-locked-out",
        "rules.v4",
        None,
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
    );
    put("b-database", "haproxy.cfg", https, "");
    put("b-database", "my.cnf", Some("mariadb/primary.cnf"), "");
    put(
        "c-refused",
        "haproxy.cfg",
        Some("haproxy/lb_no_port_with_check.cfg"),
        "",
    );
    put("d-clean", "haproxy.cfg", https, "");
    put(
        "e-redirect-302",
        "haproxy.cfg",
        Some("haproxy/https_hsts_no_code.cfg"),
        "",
    );
    let students = [
        "a-locked-out",
        "b-database",
        "c-refused",
        "d-clean",
        "e-redirect-302",
    ];
    let claims = [
        "https.valid_cert",
        "https.redirect",
        "lb.round_robin",
        "firewall.lb_exposes_only_web",
        "firewall.web_only_from_lb",
    ];
    let grade = |out: &str, fresh: bool| -> serde_json::Value {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
        cmd.args(["grade", "secured_monitored", "--jobs", "1", "--out", out])
            .args(students)
            .current_dir(&class);
        for c in claims {
            cmd.args(["--claim", &format!("secured_monitored.{c}")]);
        }
        if fresh {
            cmd.arg("--fresh");
        }
        let done = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&done.stdout).into_owned();
        // c-refused is not graded: exit 1.
        assert_eq!(
            done.status.code(),
            Some(1),
            "{stdout}\n{}",
            String::from_utf8_lossy(&done.stderr)
        );
        let json = std::fs::read_to_string(class.join(out).join("class.json")).unwrap();
        eprintln!(
            "{}",
            stdout
                .lines()
                .filter(|l| l.starts_with("graded") || l.starts_with("== "))
                .collect::<Vec<_>>()
                .join("\n")
        );
        serde_json::from_str(&json).unwrap()
    };
    let in_place = grade("in-place", false);
    let fresh = grade("fresh", true);
    std::fs::remove_dir_all(&class).unwrap();
    let rows = |class: &serde_json::Value| -> Vec<(String, Vec<String>, bool, String)> {
        class["submissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let verdicts = s["outcomes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| format!("{} {}", o["id"], o["verdict"].as_str().unwrap_or("?")))
                    .collect();
                let on = match &s["on"] {
                    serde_json::Value::Null => "not run".to_string(),
                    on => on.as_object().unwrap().keys().next().unwrap().clone(),
                };
                (
                    s["name"].as_str().unwrap().to_string(),
                    verdicts,
                    s["error"].is_string(),
                    on,
                )
            })
            .collect()
    };
    let (a, b) = (rows(&in_place), rows(&fresh));
    let table = |r: &[(String, Vec<String>, bool, String)]| -> Vec<(String, Vec<String>, bool)> {
        r.iter()
            .map(|(n, v, e, _)| (n.clone(), v.clone(), *e))
            .collect()
    };
    pretty_assertions::assert_eq!(table(&a), table(&b), "in place (left) and fresh (right)");
    let paths: Vec<(&str, &str)> = a
        .iter()
        .map(|(n, _, _, on)| (n.as_str(), on.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("a-locked-out", "InPlace"),
            ("b-database", "Fresh"),
            ("c-refused", "not run"),
            ("d-clean", "InPlace"),
            ("e-redirect-302", "InPlace"),
        ]
    );
    assert!(b.iter().all(|(_, _, _, on)| on != "InPlace"), "{b:?}");
    // The class has what it was built to have: a clean submission that
    // holds everything, and FAILs.
    let verdicts = |name: &str| a.iter().find(|r| r.0 == name).unwrap().1.join("\n");
    assert!(
        !verdicts("d-clean").contains("FAIL"),
        "{}",
        verdicts("d-clean")
    );
    assert!(
        verdicts("a-locked-out").contains("FAIL"),
        "{}",
        verdicts("a-locked-out")
    );
    assert!(
        verdicts("e-redirect-302").contains("\"secured_monitored.https.redirect\" FAIL"),
        "{}",
        verdicts("e-redirect-302")
    );
}
