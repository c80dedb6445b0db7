//! Users' own configuration files, written the way people write them
//! (tests/configs/<kind>/: HAProxy, Nginx, Apache, keepalived, MariaDB,
//! PHP-FPM, Prometheus, iptables/ufw, an install script), checked as they
//! are with `stackproof check <design> --config [HOST:]KIND=<file>`: each
//! test states what the checklist must say about its file. Every run maps
//! the file onto the run's hosts; none contacts an address of the file.

use std::process::{Command, Output};

/// `stackproof check <design> --config haproxy=<file> --claim ...`.
fn check(design: &str, file: &str, claims: &[&str]) -> (Output, String, String, Verdicts) {
    check_with(design, file, claims, &[])
}

/// The same, with more arguments (`--html <file>`).
fn check_with(
    design: &str,
    file: &str,
    claims: &[&str],
    extra: &[&std::ffi::OsStr],
) -> (Output, String, String, Verdicts) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs/haproxy")
        .join(file);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.args(["check", design, "--config"])
        .arg(format!("haproxy={}", path.display()));
    for c in claims {
        cmd.args(["--claim", &format!("{design}.{c}")]);
    }
    cmd.args(extra);
    let (out, verdicts) = run_with_report(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr, verdicts)
}

/// Each claim's verdict, as the run's JSON report (`check --json`) has it.
#[derive(Debug, Default)]
struct Verdicts(std::collections::BTreeMap<String, String>);

impl Verdicts {
    /// Whether claim `id` came out as `label` (`PASS`, `FAIL`, `ERROR`, `SKIP`).
    fn is(&self, label: &str, id: &str) -> bool {
        self.0.get(id).is_some_and(|v| v == label)
    }
}

/// Runs `cmd` (a `stackproof check`) with `--json` to a file of its own and
/// reads the verdicts from it (none when the run stopped before its claims).
fn run_with_report(mut cmd: Command) -> (Output, Verdicts) {
    let json = std::env::temp_dir().join(format!(
        "sp-configs-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&json);
    let out = cmd.arg("--json").arg(&json).output().unwrap();
    let mut verdicts = Verdicts::default();
    if let Ok(text) = std::fs::read_to_string(&json) {
        let report: serde_json::Value = serde_json::from_str(&text).unwrap();
        for c in report["claims"].as_array().unwrap() {
            verdicts.0.insert(
                c["id"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            );
        }
        let _ = std::fs::remove_file(&json);
    }
    (out, verdicts)
}

#[test]
fn debians_default_config_with_public_servers_balances_round_robin() {
    let (out, stdout, stderr, v) = check(
        "distributed",
        "lb_debian_default.cfg",
        &[
            "lb.round_robin",
            "lb.active_active",
            "lb.health_check",
            "issue.spof_lb",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("server 4211-web-01 100.25.34.211:80 -> server-1 172."),
        "{stdout}"
    );
    assert!(
        stdout.contains("server 4211-web-02 54.160.85.72:80 -> server-2 172."),
        "{stdout}"
    );
    for id in [
        "lb.round_robin",
        "lb.active_active",
        "lb.health_check",
        "issue.spof_lb",
    ] {
        assert!(v.is("PASS", &format!("distributed.{id}")), "{id}: {stdout}");
    }
}

#[test]
fn balance_source_breaks_round_robin() {
    let (out, stdout, _, v) = check("distributed", "lb_balance_source.cfg", &["lb.round_robin"]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(v.is("FAIL", "distributed.lb.round_robin"), "{stdout}");
}

/// One request after another, least connections alternates like
/// round-robin; only a busy server tells them apart.
#[test]
fn leastconn_is_not_round_robin_once_a_server_is_busy() {
    let (out, stdout, _, v) = check("distributed", "lb_leastconn.cfg", &["lb.round_robin"]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(v.is("FAIL", "distributed.lb.round_robin"), "{stdout}");
    assert!(
        stdout.contains("busy with a request held open it got 0 of 10"),
        "{stdout}"
    );
}

#[test]
fn an_address_on_the_listen_line_is_refused_with_the_2x_way_to_write_it() {
    let (out, stdout, stderr, _) = check("distributed", "lb_listen_style.cfg", &["lb.round_robin"]);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("please use the 'bind' keyword"),
        "the server's words: {stderr}"
    );
    assert!(
        stderr.contains(
            "lb_listen_style.cfg:9: an address on the `listen` line is HAProxy 1.x syntax"
        ) && stderr.contains("bind 0.0.0.0:80"),
        "{stderr}"
    );
    assert!(
        stdout.contains("added: global: stats socket /run/haproxy/admin.sock"),
        "{stdout}"
    );
}

#[test]
fn one_server_fails_the_claims_that_count_backends() {
    let (out, stdout, _, v) = check(
        "distributed",
        "lb_one_server.cfg",
        &["lb.round_robin", "lb.active_active"],
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(v.is("FAIL", "distributed.lb.round_robin"), "{stdout}");
    assert!(v.is("FAIL", "distributed.lb.active_active"), "{stdout}");
}

#[test]
fn a_third_server_is_left_out_and_said_so() {
    let (out, stdout, _, _) = check("distributed", "lb_three_servers.cfg", &["lb.round_robin"]);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("web-03 3.94.181.29:80 -> not mapped"),
        "{stdout}"
    );
}

#[test]
fn haproxy_1x_directives_stop_with_the_servers_words_and_the_2x_replacement() {
    let (out, stdout, stderr, _) =
        check("distributed", "lb_1x_directives.cfg", &["lb.round_robin"]);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("haproxy -c"),
        "the server's own check is quoted: {stderr}"
    );
    assert!(stderr.contains("reqadd"), "{stderr}");
    assert!(
        stderr.contains("lb_1x_directives.cfg:16: `reqadd` was removed in HAProxy 2.1")
            && stderr.contains("http-request add-header"),
        "{stderr}"
    );
}

#[test]
fn two_frontends_on_one_port_are_a_warning_and_secrets_never_show() {
    let (out, stdout, stderr, _) = check(
        "distributed",
        "lb_two_frontends_port80.cfg",
        &["lb.round_robin"],
    );
    assert!(
        stdout.contains("warning: lb_two_frontends_port80.cfg:17: `frontend www` binds port 80"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
}

#[test]
fn a_tutorials_https_setup_with_an_acme_backend_holds_its_https_claims() {
    let (out, text, v) = check_files(
        "secured_monitored",
        &["lb-1:haproxy=haproxy/https_acme_backend.cfg"],
        &["lb.round_robin", "https.valid_cert", "https.redirect"],
        &[],
    );
    // certbot's challenge server is on the load balancer itself, not a backend.
    assert!(
        text.contains("server letsencrypt 127.0.0.1:54321 -> kept"),
        "{text}"
    );
    for id in ["lb.round_robin", "https.valid_cert", "https.redirect"] {
        assert!(
            v.is("PASS", &format!("secured_monitored.{id}")),
            "{id}: {text}"
        );
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn a_tutorials_own_section_names_still_give_the_monitoring_its_counters() {
    // http_front / https_front / http_back and an exporter frontend named
    // `prometheus`: the claims query the design's names (www, web, metrics).
    let (out, text, v) = check_files(
        "secured_monitored",
        &["lb-1:haproxy=haproxy/https_own_names_exporter.cfg"],
        &["monitoring.qps", "monitoring.response_times"],
        &[],
    );
    assert!(text.contains("frontend https_front -> www"), "{text}");
    assert!(text.contains("backend http_back -> web"), "{text}");
    for id in ["monitoring.qps", "monitoring.response_times"] {
        assert!(
            v.is("PASS", &format!("secured_monitored.{id}")),
            "{id}: {text}"
        );
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn letsencrypt_https_without_hsts_holds_tls_but_fails_the_redirect_claim() {
    let (out, stdout, stderr, v) = check(
        "secured_monitored",
        "https_letsencrypt.cfg",
        &["https.valid_cert", "https.redirect", "lb.round_robin"],
    );
    assert!(
        stdout.contains("domain 4211.tech -> foobar.com"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "crt /etc/letsencrypt/live/www.4211.tech/haproxy.pem -> /etc/haproxy/www.pem"
        ),
        "{stdout}"
    );
    assert!(
        v.is("PASS", "secured_monitored.https.valid_cert"),
        "{stdout}\n{stderr}"
    );
    assert!(v.is("PASS", "secured_monitored.lb.round_robin"), "{stdout}");
    assert!(v.is("FAIL", "secured_monitored.https.redirect"), "{stdout}");
    assert!(stdout.contains("HSTS max-age missing"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_redirect_with_no_code_is_302_and_fails() {
    let (out, stdout, _, v) = check(
        "secured_monitored",
        "https_hsts_no_code.cfg",
        &["https.redirect"],
    );
    assert!(stdout.contains("has no `code`"), "{stdout}");
    assert!(v.is("FAIL", "secured_monitored.https.redirect"), "{stdout}");
    assert!(stdout.contains("answered 302, not 301"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn servers_without_a_port_behind_tls_are_reached_on_443_and_the_site_breaks() {
    let (out, stdout, _, v) = check(
        "secured_monitored",
        "https_server_no_port.cfg",
        &["lb.round_robin"],
    );
    assert!(
        stdout.contains("(no port: HAProxy connects on the port the client used"),
        "{stdout}"
    );
    assert!(v.is("FAIL", "secured_monitored.lb.round_robin"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_complete_https_config_holds_the_secured_claims() {
    let (out, stdout, stderr, _) = check(
        "secured_monitored",
        "https_complete.cfg",
        &[
            "https.valid_cert",
            "https.redirect",
            "lb.round_robin",
            "monitoring.qps",
            "monitoring.response_times",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
}

#[test]
fn health_checked_servers_without_a_port_are_refused_by_haproxy_itself() {
    let (out, stdout, stderr, _) = check(
        "distributed",
        "lb_no_port_with_check.cfg",
        &["lb.round_robin"],
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("has neither service port nor check port"),
        "{stderr}"
    );
    assert!(
        stdout.contains("server web-01 100.25.34.211 -> server-1"),
        "the mapping is shown: {stdout}"
    );
}

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
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

/// `stackproof check simple_web_nginx --config nginx=<file> --claim ...`.
fn check_nginx(file: &str, claims: &[&str]) -> (Output, String, Verdicts) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs/nginx")
        .join(file);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.args(["check", "simple_web_nginx", "--config"])
        .arg(format!("nginx={}", path.display()));
    for c in claims {
        cmd.args(["--claim", &format!("simple_web_nginx.{c}")]);
    }
    let (out, verdicts) = run_with_report(cmd);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text, verdicts)
}

#[test]
fn debians_default_site_serves_static_files_but_no_php() {
    let (out, text, v) = check_nginx(
        "default_custom_header",
        &["web.static_by_nginx", "app.dynamic_by_php"],
    );
    assert!(
        text.contains("default_custom_header:5: listen [::]:80 -> left out"),
        "{text}"
    );
    assert!(
        v.is("PASS", "simple_web_nginx.web.static_by_nginx"),
        "{text}"
    );
    assert!(
        v.is("FAIL", "simple_web_nginx.app.dynamic_by_php"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn the_php_socket_of_the_users_server_becomes_the_designs_php_fpm() {
    let (out, text, _) = check_nginx(
        "default_with_php",
        &["web.static_by_nginx", "app.dynamic_by_php", "db.query_flow"],
    );
    assert!(
        text.contains("fastcgi_pass unix:/run/php/php7.4-fpm.sock -> 127.0.0.1:9000"),
        "{text}"
    );
    assert!(text.contains("domain 4211.tech -> foobar.com"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

// ---------------------------------------------------------------------------
// The other servers' files (tests/configs/<kind>/), given as
// `--config [HOST:]KIND=PATH`, one file per host where the hosts differ.

/// `stackproof check <design> --config <arg>... --claim ...`, each arg
/// `[HOST:]KIND=<file under tests/configs>`; stdout and stderr together.
fn check_files(
    design: &str,
    files: &[&str],
    claims: &[&str],
    extra: &[&str],
) -> (Output, String, Verdicts) {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.args(["check", design]);
    for f in files {
        let (kind, path) = f.split_once('=').unwrap();
        cmd.arg("--config")
            .arg(format!("{kind}={}", configs.join(path).display()));
    }
    for c in claims {
        cmd.args(["--claim", &format!("{design}.{c}")]);
    }
    cmd.args(extra);
    let (out, verdicts) = run_with_report(cmd);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text, verdicts)
}

#[test]
fn a_keepalived_pair_with_one_second_adverts_holds_one_master_but_fails_over_too_slowly() {
    let (out, text, v) = check_files(
        "scale_up",
        &[
            "lb-1:keepalived=keepalived/lb-01.conf",
            "lb-2:keepalived=keepalived/lb-02.conf",
        ],
        &["lb.single_master", "lb.failover"],
        &[],
    );
    // Each host's own copy, its peer the other load balancer.
    assert!(
        text.contains("lb-01.conf:32: unicast_peer 10.0.0.12 -> ")
            && text.contains("lb-02.conf:32: unicast_peer 10.0.0.11 -> "),
        "{text}"
    );
    assert!(
        text.contains("lb-01.conf:9: smtp_server 10.0.0.25 -> left out"),
        "{text}"
    );
    assert!(text.contains("virtual address 54.12.0.10 -> "), "{text}");
    // keepalived's own words about the file, as notes.
    assert!(
        !text.contains("your file is on"),
        "both peers have theirs: {text}"
    );
    assert!(
        text.contains("Truncating auth_pass to 8 characters"),
        "{text}"
    );
    assert!(!text.contains("Sup3rS3cret"), "{text}");
    assert!(v.is("PASS", "scale_up.lb.single_master"), "{text}");
    // advert_int 1: the backup waits three adverts before it takes over.
    assert!(v.is("FAIL", "scale_up.lb.failover"), "{text}");
    assert!(text.contains("budget 1000 ms"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn a_nopreempt_pair_fails_over_whichever_peer_won_the_vip() {
    // Both peers BACKUP with `nopreempt`: which holds the VIP on a fresh
    // stack is a race the higher priority usually wins. Either way the
    // takeover is measured from the holder, and a peer back from a fault
    // leaves the VIP where it is: no claim may fail for either.
    let (out, text, v) = check_files(
        "scale_up",
        &[
            "lb-1:keepalived=keepalived/nopreempt-lb-01.conf",
            "lb-2:keepalived=keepalived/nopreempt-lb-02.conf",
        ],
        &[
            "lb.single_master",
            "lb.failover",
            "lb.haproxy_crash_failover",
        ],
        &[],
    );
    for id in ["single_master", "failover", "haproxy_crash_failover"] {
        assert!(v.is("PASS", &format!("scale_up.lb.{id}")), "{id}: {text}");
    }
    // The health check asks systemd, which the run's hosts do not run.
    assert!(
        text.contains(
            "script `/usr/bin/systemctl is-active --quiet haproxy` -> `/usr/bin/pgrep -x haproxy`"
        ),
        "{text}"
    );
    // Whichever won first, one claim met the pair the other way round.
    assert!(
        text.contains("kept the VIP after lb-1 came back (`nopreempt`)")
            || text.contains("so here lb-2 is the master"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn a_tutorials_primary_and_replica_files_replicate_and_split_reads_from_writes() {
    let (out, text, _) = check_files(
        "distributed",
        &[
            "server-1:mariadb=mariadb/primary.cnf",
            "server-2:mariadb=mariadb/replica.cnf",
        ],
        &[
            "db.replication",
            "db.replica_read_only",
            "db.writes_to_primary",
            "db.reads_from_replica",
        ],
        &[],
    );
    assert!(
        text.contains("primary.cnf:12: bind-address = 10.0.0.21 -> "),
        "{text}"
    );
    assert!(
        text.contains("primary.cnf:15: binlog_do_db = tyrell_corp -> foobar"),
        "{text}"
    );
    assert!(text.contains("added: userstat = 1"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn debians_default_server_file_on_both_databases_keeps_them_local_and_breaks_replication() {
    let (out, text, v) = check_files(
        "distributed",
        &["mariadb=mariadb/50-server.cnf"],
        &["db.replication", "issue.no_firewall"],
        &[],
    );
    assert!(
        text.contains("`bind-address = 127.0.0.1`: only this host"),
        "{text}"
    );
    assert!(
        text.contains("both get server-id 1 (the default)"),
        "{text}"
    );
    assert!(v.is("FAIL", "distributed.db.replication"), "{text}");
    // Nothing listens on the network, so the "no firewall" weakness is not there.
    assert!(v.is("FAIL", "distributed.issue.no_firewall"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn debians_php_pool_and_an_nginx_upstream_serve_the_app() {
    let (out, text, _) = check_files(
        "simple_web_nginx",
        &["php-fpm=php-fpm/www.conf", "nginx=nginx/upstream_php"],
        &["app.dynamic_by_php", "db.query_flow", "web.static_by_nginx"],
        &[],
    );
    assert!(
        text.contains("www.conf:6: listen = /run/php/php7.4-fpm.sock -> 127.0.0.1:9000"),
        "{text}"
    );
    assert!(
        text.contains(
            "upstream php-handler: server unix:/var/run/php/php7.4-fpm.sock -> 127.0.0.1:9000"
        ),
        "{text}"
    );
    assert!(
        text.contains("added: access.log = /var/log/php-fpm/access.log"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn a_lamp_tutorials_apache_site_serves_static_and_php() {
    let (out, text, _) = check_files(
        "simple_web",
        &["apache=apache/000-default.conf"],
        &[
            "web.static_by_apache",
            "app.dynamic_by_php",
            "db.query_flow",
        ],
        &[],
    );
    assert!(
        text.contains(
            "proxy:unix:/run/php/php8.1-fpm.sock|fcgi://localhost -> proxy:fcgi://127.0.0.1:9000"
        ),
        "{text}"
    );
    assert!(
        text.contains("DocumentRoot /var/www/4211.tech -> /var/www/html"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn a_prometheus_that_scrapes_every_15_s_is_given_its_own_intervals() {
    // Prometheus spreads a job's first scrapes over its interval: with 15 s,
    // a fixed 10 s wait saw one of three exporters and failed a setup that
    // monitors all three.
    let (out, text, v) = check_files(
        "secured_monitored",
        &["prometheus=prometheus/prometheus_15s.yml"],
        &[
            "monitoring.clients_up",
            "monitoring.detects_down",
            "monitoring.response_times",
        ],
        &[
            "--address",
            "10.0.0.10=lb-1",
            "--address",
            "10.0.0.11=server-1",
            "--address",
            "10.0.0.12=server-2",
        ],
    );
    assert!(
        v.is("PASS", "secured_monitored.monitoring.clients_up"),
        "{text}"
    );
    assert!(text.contains("lb-1=1, server-1=1, server-2=1"), "{text}");
    // "Within 2 scrape intervals" is 2 of this Prometheus's 15 s.
    assert!(
        v.is("PASS", "secured_monitored.monitoring.detects_down"),
        "{text}"
    );
    assert!(
        text.contains("window 2 scrapes of `nginx`, every 15000 ms, + 500 ms = 30500 ms"),
        "{text}"
    );
    // The slowed backend's series rises in the scrape after the burst.
    assert!(
        v.is("PASS", "secured_monitored.monitoring.response_times"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn a_users_prometheus_scrapes_every_host_but_alerts_too_late_and_misses_mtail() {
    let (out, text, v) = check_files(
        "scale_up",
        &["prometheus=prometheus/prometheus.yml"],
        &[
            "monitoring.resources",
            "monitoring.alert_on_down",
            "monitoring.access_logs_parsed",
        ],
        &[],
    );
    assert!(
        text.contains("alertmanager '10.0.0.40:9093' -> left out"),
        "{text}"
    );
    assert!(
        text.contains("rule file alert.rules.yml -> /etc/prometheus/rules.yml"),
        "{text}"
    );
    assert!(text.contains("added: label host=\"db-1\""), "{text}");
    assert!(v.is("PASS", "scale_up.monitoring.resources"), "{text}");
    // Scrapes every 5 s and `for: 5s`: longer than the design's 6 s window.
    assert!(v.is("FAIL", "scale_up.monitoring.alert_on_down"), "{text}");
    // No mtail job: the access-log counter is not monitored.
    assert!(
        v.is("FAIL", "scale_up.monitoring.access_logs_parsed"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn a_ufw_script_on_the_load_balancer_keeps_the_web_open_and_the_monitoring_out() {
    let (out, text, v) = check_files(
        "secured_monitored",
        &["lb-1:iptables=iptables/ufw_lb.sh"],
        &[
            "firewall.lb_exposes_only_web",
            "https.valid_cert",
            "monitoring.clients_up",
        ],
        &[],
    );
    assert!(
        text.contains("ufw_lb.sh:5: ufw default deny incoming -> policy INPUT DROP"),
        "{text}"
    );
    assert!(
        v.is("PASS", "secured_monitored.firewall.lb_exposes_only_web"),
        "{text}"
    );
    assert!(v.is("PASS", "secured_monitored.https.valid_cert"), "{text}");
    // ufw lets in nothing but 22, 80 and 443: the node exporter is dropped.
    assert!(
        v.is("FAIL", "secured_monitored.monitoring.clients_up"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The same script without 443: the site's HTTPS is dropped at the firewall.
    let (out, text, v) = check_files(
        "secured_monitored",
        &["lb-1:iptables=iptables/ufw_lb_no_https.sh"],
        &["https.valid_cert"],
        &[],
    );
    assert!(v.is("FAIL", "secured_monitored.https.valid_cert"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn ufw_scripts_are_taken_as_ufw_runs_them_defaults_and_enable_included() {
    // No `ufw default` lines: ufw's own default still drops what comes in.
    let (out, text, v) = check_files(
        "secured_monitored",
        &["lb-1:iptables=iptables/ufw_lb_short.sh"],
        &["firewall.lb_exposes_only_web"],
        &[],
    );
    assert!(
        text.contains(
            "ufw's default for INPUT (/etc/default/ufw, not set in the file) -> policy INPUT DROP"
        ),
        "{text}"
    );
    assert!(
        v.is("PASS", "secured_monitored.firewall.lb_exposes_only_web"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    // `ufw enable` forgotten: no firewall on the server, none in the run.
    let (out, text, v) = check_files(
        "secured_monitored",
        &["lb-1:iptables=iptables/ufw_lb_not_enabled.sh"],
        &["firewall.lb_exposes_only_web"],
        &[],
    );
    assert!(text.contains("ufw stays off on the server"), "{text}");
    assert!(
        v.is("FAIL", "secured_monitored.firewall.lb_exposes_only_web"),
        "{text}"
    );
    assert!(text.contains("8405 open"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn an_address_no_file_names_stops_the_run_until_the_user_says_what_it_is() {
    let dir = std::env::temp_dir().join(format!("sp-fw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.v4");
    std::fs::write(
        &rules,
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A INPUT -s 10.0.0.2 -p tcp --dport 80 -j ACCEPT\n-A INPUT -s 10.0.0.0/16 -p tcp -m multiport --dports 3306,9100,9113 -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    let config = format!("server-1:iptables={}", rules.display());
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
        cmd.args(["check", "secured_monitored", "--config", &config])
            .args(["--claim", "secured_monitored.firewall.web_only_from_lb"])
            .args(extra);
        let (out, v) = run_with_report(cmd);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, text, v)
    };
    let (out, text, _) = run(&[]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("line 5: 10.0.0.2 is none of the run's hosts"),
        "{text}"
    );
    assert!(text.contains("--address 10.0.0.2=HOST"), "{text}");
    let (out, text, v) = run(&["--address", "10.0.0.2=lb-1"]);
    assert!(text.contains("rules.v4:5: 10.0.0.2 -> "), "{text}");
    assert!(text.contains("10.0.0.0/16 -> "), "{text}");
    assert!(
        v.is("PASS", "secured_monitored.firewall.web_only_from_lb"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cipher_openssl_does_not_know_is_a_warning_and_tls_still_holds() {
    let (out, text, v) = check_files(
        "secured_monitored",
        &["haproxy=haproxy/https_cipher_typo.cfg"],
        &["https.valid_cert"],
        &[],
    );
    assert!(
        text.contains(
            "haproxy.cfg:19: cipher `ECDHE-RSA-AES128-GCM-SHA265` is unknown to this OpenSSL"
        ),
        "{text}"
    );
    assert!(text.contains("cipher `DES-CBC3-SHA` is unknown"), "{text}");
    assert!(!text.contains("cipher `!aNULL`"), "{text}");
    assert!(v.is("PASS", "secured_monitored.https.valid_cert"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn a_whole_nginx_conf_with_the_site_in_it_replaces_the_designs_and_serves_the_app() {
    let (out, text, _) = check_files(
        "simple_web_nginx",
        &["nginx=nginx/nginx.conf"],
        &["web.static_by_nginx", "app.dynamic_by_php"],
        &[],
    );
    // The http line gains the design's log format; the user's access_log uses it.
    assert!(
        text.contains("added: nginx.conf:12: `log_format stackproof"),
        "{text}"
    );
    assert!(
        text.contains("nginx.conf:22: access_log /var/log/nginx/access.log -> access_log /var/log/nginx/access.log stackproof"),
        "{text}"
    );
    assert!(
        text.contains(
            "nginx.conf:39: fastcgi_pass unix:/run/php/php7.4-fpm.sock -> 127.0.0.1:9000"
        ),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn an_nginx_script_that_edits_the_enabled_site_in_place_is_checked_as_nginx_serves_it() {
    // `sed -i` on sites-enabled/default turns Debian's link into a file of
    // its own: the PHP block it adds is only there, not in sites-available.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs/scripts/0-lemp_in_place");
    let (out, text, v) = check_files(
        "distributed",
        &[],
        &["app.dynamic_by_app"],
        &["--script", &format!("nginx={}", script.display())],
    );
    assert!(
        text.contains("0-lemp_in_place: wrote /etc/nginx/sites-enabled/default"),
        "{text}"
    );
    assert!(
        text.contains("fastcgi_pass unix:/run/php/php8.2-fpm.sock -> 127.0.0.1:9000"),
        "{text}"
    );
    assert!(v.is("PASS", "distributed.app.dynamic_by_app"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn a_keepalived_install_script_for_one_peer_and_a_file_for_the_other_make_a_pair() {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.args(["check", "scale_up", "--script"])
        .arg(format!(
            "lb-1:keepalived={}",
            configs.join("scripts/2-install_keepalived").display()
        ))
        .arg("--config")
        .arg(format!(
            "lb-2:keepalived={}",
            configs.join("keepalived/lb-02.conf").display()
        ))
        .args(["--claim", "scale_up.lb.single_master"]);
    let (out, v) = run_with_report(cmd);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("systemctl restart keepalived: skipped"),
        "{text}"
    );
    assert!(
        text.contains("/etc/keepalived/keepalived.conf as ")
            && text.contains("2-install_keepalived wrote it (keepalived) -> keepalived on lb-1"),
        "{text}"
    );
    assert!(
        text.contains("keepalived.conf:29: unicast_peer 10.0.0.12 -> "),
        "{text}"
    );
    assert!(v.is("PASS", "scale_up.lb.single_master"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn mozillas_dhparam_a_custom_error_page_and_a_client_ca_become_the_runs_files() {
    let (out, stdout, stderr, _) = check(
        "secured_monitored",
        "https_mozilla_dhparam.cfg",
        &["https.valid_cert", "https.redirect", "lb.round_robin"],
    );
    for mapped in [
        "ssl-dh-param-file /etc/haproxy/dhparam.pem -> /etc/haproxy/ffdhe2048.pem",
        "errorfile 503 /etc/haproxy/errors/maintenance.http -> /etc/haproxy/errors/503.http",
        "ca-file /etc/haproxy/clients-ca.pem -> /etc/haproxy/ca.pem",
    ] {
        assert!(stdout.contains(mapped), "{mapped}: {stdout}");
    }
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
}

/// HAProxy's default checks (inter 2 s, fall 3) take 6 s or more to take a
/// stopped server out: the claim waits as long as the running file says,
/// not a fixed 5 s. The remedy, the design's own variant, would replace
/// the user's file, so it is skipped with the reason rather than passed.
#[test]
fn default_check_timers_are_waited_for_and_the_remedy_never_replaces_the_users_file() {
    let (out, text, v) = check_files(
        "secured_monitored",
        &["lb-1:haproxy=haproxy/https_default_checks.cfg"],
        &["issue.same_components", "remedy.reencrypt"],
        &[],
    );
    assert!(
        v.is("PASS", "secured_monitored.issue.same_components"),
        "{text}"
    );
    assert!(
        text.contains("3 timed-out checks at its inter 2000 ms"),
        "the wait is explained by the file's timers: {text}"
    );
    assert!(v.is("SKIP", "secured_monitored.remedy.reencrypt"), "{text}");
    assert!(
        text.contains("which would replace your own `services/haproxy-tls/haproxy.cfg` (--config)"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// A student's file with no `global` section has no `daemon` line: HAProxy
/// is started the same way whatever the file says, so the run goes on.
#[test]
fn a_file_with_no_global_section_starts_like_any_other() {
    let (out, text, v) = check_files(
        "distributed",
        &["haproxy=haproxy/lb_no_global.cfg"],
        &["lb.round_robin", "lb.health_check"],
        &[],
    );
    assert!(
        text.contains("server 530-web-01 34.229.71.116:80 -> server-1"),
        "{text}"
    );
    for id in ["lb.round_robin", "lb.health_check"] {
        assert!(v.is("PASS", &format!("distributed.{id}")), "{id}: {text}");
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// Most tutorials' pairs advertise to multicast, which the run's networks
/// do not carry: mapped to unicast (and said so), such a pair holds one
/// master and splits when its adverts are dropped, as on the LAN it was
/// written for.
#[test]
fn a_multicast_pair_is_judged_as_on_a_lan_that_carries_its_adverts() {
    let (out, text, v) = check_files(
        "scale_up",
        &[
            "lb-1:keepalived=keepalived/multicast-lb-01.conf",
            "lb-2:keepalived=keepalived/multicast-lb-02.conf",
        ],
        &["lb.single_master", "issue.split_brain"],
        &[],
    );
    assert!(
        text.contains("multicast-lb-01.conf:27: (no unicast_peer) -> unicast_peer { 172.")
            && text.contains("multicast-lb-02.conf:27: (no unicast_peer) -> unicast_peer { 172."),
        "{text}"
    );
    assert!(
        text.contains("which cloud networks such as AWS's drop"),
        "{text}"
    );
    for id in ["lb.single_master", "issue.split_brain"] {
        assert!(v.is("PASS", &format!("scale_up.{id}")), "{id}: {text}");
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
}
