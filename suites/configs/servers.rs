//! The other servers' files (tests/configs/<kind>/), given as `--config
//! [HOST:]SERVER=PATH`, one file per host where the hosts differ: Nginx,
//! Apache, keepalived, MariaDB, PHP-FPM, Prometheus, iptables and ufw.

use std::process::Command;

use crate::{check_files, check_nginx, run_with_report};

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
    // A 15 s scrape meets the design's 30 s "real-time" window; the
    // interval is printed beside it and does not widen it.
    assert!(
        v.is("PASS", "secured_monitored.monitoring.detects_down"),
        "{text}"
    );
    assert!(
        text.contains("job `nginx` scraped every 15000 ms; window 30000 ms"),
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
            "firewall.default_deny",
            "https.valid_cert",
            "monitoring.clients_up",
        ],
        &[],
    );
    assert!(
        text.contains("ufw_lb.sh:5: ufw default deny incoming -> policy INPUT DROP"),
        "{text}"
    );
    // "Filter incoming traffic" holds: the exporters it drops are the
    // monitoring claims' breakage, a note here, not this claim's FAIL.
    assert!(
        v.is("PASS", "secured_monitored.firewall.default_deny"),
        "{text}"
    );
    assert!(
        text.contains("note: allowed but closed (the breakage of the claims that use them, not of this one): mon-1 → lb-1:8405 closed (should be open); mon-1 → lb-1:9100 closed"),
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

/// `ufw default deny incomming`: ufw refuses the line and sets nothing, so
/// its own default (drop what comes in) stays: a warning, and the verdict
/// of the firewall ufw really builds.
#[test]
fn a_misspelt_ufw_default_is_refused_as_ufw_refuses_it() {
    let (out, text, v) = check_files(
        "secured_monitored",
        &["lb-1:iptables=iptables/ufw_lb_typo.sh"],
        &["firewall.lb_exposes_only_web"],
        &[],
    );
    assert!(
        text.contains("ufw refuses this line, direction `incomming`"),
        "{text}"
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
}

/// `ufw default reject incoming`: as ufw builds it, the policy DROP and a
/// last rule that rejects; the firewall loads it and keeps every port but
/// the web's closed.
#[test]
fn a_ufw_reject_default_is_built_as_ufw_builds_it() {
    let (out, text, v) = check_files(
        "secured_monitored",
        &["lb-1:iptables=iptables/ufw_lb_reject.sh"],
        &["firewall.lb_exposes_only_web"],
        &[],
    );
    assert!(
        text.contains(
            "ufw default reject incoming -> policy INPUT DROP, and a last rule -A INPUT -j REJECT"
        ),
        "{text}"
    );
    assert!(
        v.is("PASS", "secured_monitored.firewall.lb_exposes_only_web"),
        "{text}"
    );
    assert!(text.contains("8405 closed"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
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

/// A template given as it is in the repository, placeholders and all: one
/// line naming the file, the line and what to do, before any container.
#[test]
fn an_unrendered_template_is_named_by_its_line() {
    let (out, text, _) = check_files(
        "scale_up",
        &["lb-1:keepalived=keepalived/template-unrendered.conf"],
        &["lb.single_master"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("template-unrendered.conf`: line 8: `{{STATE}}` is a template placeholder nobody filled in"),
        "{text}"
    );
    assert!(!text.contains("known: app-1.private"), "{text}");
}

/// A tutorial's placeholder where the server expects a value (an address,
/// a host name) is refused with the file, its line and what to write, per
/// server, before any container; mapped, it would have become an address
/// the run made up.
#[test]
fn a_placeholder_where_a_value_belongs_is_refused_with_its_line() {
    for (design, config, said) in [
        (
            "scale_up",
            "lb-1:keepalived=keepalived/placeholder-tutorial.conf",
            "placeholder-tutorial.conf`: line 21: `<PRIVATE IP FROM MASTER INSTANCE>` is a placeholder where keepalived expects an IP address after `unicast_src_ip`",
        ),
        (
            "distributed",
            "haproxy=haproxy/placeholder-student-id.cfg",
            "placeholder-student-id.cfg`: line 22: `[STUDENT_ID]-web-01:80` is a placeholder where HAProxy expects an address or host name after `server`",
        ),
        (
            "distributed",
            "server-1:mariadb=mariadb/placeholder-bind.cnf",
            "placeholder-bind.cnf`: line 7: `YOUR_SERVER_IP` is a placeholder where MariaDB expects an address or host name after `bind-address`",
        ),
        (
            "secured_monitored",
            "server-1:iptables=iptables/placeholder-ufw.sh",
            "placeholder-ufw.sh`: line 6: `WEB_SERVER_IP` is a placeholder where iptables expects an address or host name after `from`",
        ),
    ] {
        let claim = match design {
            "scale_up" => "dns.www_to_vip",
            "secured_monitored" => "lb.round_robin",
            _ => "dns.www_to_lb",
        };
        let (out, text, _) = check_files(design, &[config], &[claim], &[]);
        assert_eq!(out.status.code(), Some(2), "{config}: {text}");
        assert!(text.contains(said), "{config}: {text}");
        assert!(!text.contains("starting the design"), "{config}: {text}");
    }
}

/// A pair whose adverts are authenticated with IPsec AH (`auth_type AH`)
/// sends them as IP protocol 51, not VRRP's 112: the split-brain claim cuts
/// the pair by its effect (every packet between the two), so the pair
/// splits as any other, and the evidence counts what the cut dropped.
/// Expected before the first run: one master at rest, split brain shown.
#[test]
fn a_pair_authenticated_with_ah_is_cut_by_effect_not_by_protocol() {
    let (out, text, v) = check_files(
        "scale_up",
        &[
            "lb-1:keepalived=keepalived/ah-lb-01.conf",
            "lb-2:keepalived=keepalived/ah-lb-02.conf",
        ],
        &["lb.single_master", "issue.split_brain"],
        &[],
    );
    for id in ["lb.single_master", "issue.split_brain"] {
        assert!(v.is("PASS", &format!("scale_up.{id}")), "{id}: {text}");
    }
    assert!(
        text.contains("every packet between lb-1 and lb-2 on `public`")
            && !text.contains("(0 packets dropped by the cut)"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// Ubuntu's MySQL `mysqld.cnf` with `bind-address` commented out, as
/// students do so the replica can connect: the file is the whole
/// configuration (as on their server), so Debian's `50-server.cnf` and its
/// `bind-address = 127.0.0.1` never fill in, MariaDB listens on every
/// address, and the pair replicates. Expected before the first run: the
/// four database claims and the no-firewall weakness hold.
#[test]
fn a_mysql_file_without_bind_address_listens_everywhere_without_debians_defaults() {
    let (out, text, v) = check_files(
        "distributed",
        &[
            "server-1:mariadb=mariadb/mysqld-primary-nobind.cnf",
            "server-2:mariadb=mariadb/mysqld-replica-nobind.cnf",
        ],
        &[
            "db.replication",
            "db.replica_read_only",
            "db.writes_to_primary",
            "db.reads_from_replica",
            "issue.no_firewall",
        ],
        &[],
    );
    assert!(
        text.contains(
            "mysqld-primary-nobind.cnf: no bind-address: MariaDB listens on every address"
        ),
        "{text}"
    );
    assert!(
        text.contains("Debian's my.cnf and mariadb.conf.d/50-server.cnf are not used"),
        "{text}"
    );
    for id in [
        "db.replication",
        "db.replica_read_only",
        "db.writes_to_primary",
        "db.reads_from_replica",
        "issue.no_firewall",
    ] {
        assert!(v.is("PASS", &format!("distributed.{id}")), "{id}: {text}");
    }
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// One keepalived file copied to both load balancers, as tutorials say:
/// equal priorities, so whichever holds the VIP keeps it. Every VRRP claim
/// starts from the pair at rest, whichever LB that is, and takes the roles
/// as it finds them. Expected before the first run: one master at rest;
/// failover FAILs on its outage (advert_int 1: about 3.6 s against the
/// design's 1 s), not on a precondition; the database claim after the
/// faults sees all its requests; split brain shown.
#[test]
fn one_file_on_both_load_balancers_is_judged_from_the_pair_at_rest() {
    let claims = [
        "lb.single_master",
        "lb.failover",
        "issue.db_bottleneck",
        "issue.split_brain",
    ];
    let (out, text, v) = check_files(
        "scale_up",
        &[
            "lb-1:keepalived=keepalived/same-file-both.conf",
            "lb-2:keepalived=keepalived/same-file-both.conf",
        ],
        &claims,
        &[],
    );
    assert!(v.is("PASS", "scale_up.lb.single_master"), "{text}");
    assert!(v.is("FAIL", "scale_up.lb.failover"), "{text}");
    assert!(v.is("PASS", "scale_up.issue.db_bottleneck"), "{text}");
    assert!(v.is("PASS", "scale_up.issue.split_brain"), "{text}");
    assert!(!text.contains("precondition not met"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
}

/// A pair whose files name different `virtual_router_id`s (51 and 52):
/// each ignores the other's adverts and both hold the VIP. The pair never
/// reaches its rest state, and that failed precondition is the verdict,
/// said as such, once: the later VRRP claims say so at once, never sampling
/// or faulting a pair that was never one. Expected before the first run:
/// single_master and failover FAIL on the precondition.
#[test]
fn a_pair_that_never_settles_fails_on_that_precondition_once() {
    let (out, text, v) = check_files(
        "scale_up",
        &[
            "lb-1:keepalived=keepalived/lb-01.conf",
            "lb-2:keepalived=keepalived/vrid-mismatch-lb-02.conf",
        ],
        &["lb.single_master", "lb.failover"],
        &[],
    );
    assert!(v.is("FAIL", "scale_up.lb.single_master"), "{text}");
    assert!(v.is("FAIL", "scale_up.lb.failover"), "{text}");
    assert!(
        text.contains("precondition not met: the keepalived pair lb-1/lb-2 never settled on one VIP holder: held by [lb-1, lb-2]"),
        "{text}"
    );
    assert!(
        text.contains("never settled on one VIP holder earlier on this stack"),
        "{text}"
    );
    assert!(!text.contains("samples 100 ms apart"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
}

/// A MySQL 8 replica file with MySQL 8's new names (`log_replica_updates`,
/// `super_read_only`), which MariaDB refuses ("unknown variable"): each is
/// mapped to MariaDB's equivalent with a line, so the file runs as it
/// means; its default collation, which MariaDB 11.8 has, is kept.
/// Expected before the first run: replication and read-only hold.
#[test]
fn a_mysql_8_replica_file_runs_with_mariadbs_names_for_its_options() {
    let (out, text, v) = check_files(
        "distributed",
        &[
            "server-1:mariadb=mariadb/primary.cnf",
            "server-2:mariadb=mariadb/mysql8-replica-renamed.cnf",
        ],
        &["db.replication", "db.replica_read_only"],
        &[],
    );
    for said in [
        "mysql8-replica-renamed.cnf:14: log_replica_updates -> log-slave-updates (MySQL 8's name)",
        "mysql8-replica-renamed.cnf:20: super_read_only = ON -> read-only = ON",
    ] {
        assert!(text.contains(said), "`{said}` missing: {text}");
    }
    // Debian 13's MariaDB has MySQL 8's collations: the user's is kept
    // (on Debian 12 it is mapped: tests/corpus/platforms/mysql8-collation).
    assert!(
        !text.contains("collation-server = utf8mb4_0900_ai_ci ->"),
        "MariaDB 11.8 has utf8mb4_0900_ai_ci: {text}"
    );
    assert!(v.is("PASS", "distributed.db.replication"), "{text}");
    assert!(v.is("PASS", "distributed.db.replica_read_only"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}
