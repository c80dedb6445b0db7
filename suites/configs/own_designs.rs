//! A design nobody here wrote, as a user writes it in a folder of their
//! own: an Nginx load balancer (upstream) over three web servers, the
//! balancer a service the user wrote (`services/nginx-lb/service.toml`).
//! The balancing kinds work on a second balancer and on N = 3 backends,
//! and its own mutants are caught for the right reason.

use crate::run_with_report;

/// The design's files, as the user wrote them.
const FILES: &[(&str, &str)] = &[
    (
        "design.toml",
        r#"# An Nginx load balancer (upstream, round-robin) over three web servers;
# the balancer is a service of this design's own (services/nginx-lb/).
summary = "Nginx on lb-1 balancing over web-1, web-2 and web-3"
zone = "dns.zone"

[[networks]]
name = "public"

[[hosts]]
name = "lb-1"
networks = ["public"]
services = ["nginx-lb"]     # this design's own service: services/nginx-lb/

[[hosts]]
name = "web-1"
networks = ["public"]
services = ["nginx"]

[[hosts]]
name = "web-2"
networks = ["public"]
services = ["nginx"]

[[hosts]]
name = "web-3"
networks = ["public"]
services = ["nginx"]

[vars]
php_upstream = "server 127.0.0.1:9000;"
"#,
    ),
    (
        "dns.zone",
        r#"$ORIGIN foobar.com.
$TTL 60
@     IN SOA  ns1.foobar.com. hostmaster.foobar.com. 1 3600 600 86400 60
@     IN NS   ns1.foobar.com.
ns1   IN A    {{ dns.server }}
www   IN A    {{ lb-1.public }}
"#,
    ),
    (
        "services/nginx-lb/service.toml",
        r#"# Nginx as a load balancer, with a configuration of its own beside the
# library's web server (it would be `nginx` with our site otherwise).
name = "nginx-lb"
processes = ["nginx"]
check = "nginx -t -c /etc/nginx-lb/nginx.conf"
start = "nginx -c /etc/nginx-lb/nginx.conf"
stop = "nginx -c /etc/nginx-lb/nginx.conf -s quit"
reload = "nginx -c /etc/nginx-lb/nginx.conf -s reload"
kill = "pkill -KILL -x nginx"
version = "nginx -v 2>&1"
ready = { tcp = 80 }
ready_means = "accept TCP on port 80"
logs = ["/var/log/nginx/lb-error.log", "/var/log/nginx/lb-access.log"]
access_log = "/var/log/nginx/lb-access.log"
files = [
  { source = "services/nginx-lb/nginx.conf", target = "/etc/nginx-lb/nginx.conf" },
]
"#,
    ),
    (
        "services/nginx-lb/nginx.conf",
        r#"# lb-1 balances round-robin over the three web servers; it serves nothing itself.
user www-data;
worker_processes 1;
pid /run/nginx-lb.pid;
error_log /var/log/nginx/lb-error.log;
events { worker_connections 512; }
http {
    access_log /var/log/nginx/lb-access.log;
    upstream backends {
        server {{ web-1.public }}:80;
        server {{ web-2.public }}:80;
        server {{ web-3.public }}:80;
    }
    server {
        listen 80 default_server;
        server_name www.foobar.com;
        location / {
            proxy_pass http://backends;
        }
    }
}
"#,
    ),
    (
        "claims.toml",
        r#"[[claim]]
id = "nginx_lb3.dns.www_to_lb"
says = "users reach the site through the load balancer"
kind = "dns.a_record"
points_at = "lb-1"

[[claim]]
id = "nginx_lb3.lb.round_robin"
says = "requests are sent to each server in turn"
kind = "lb.round_robin"
backends = ["web-1", "web-2", "web-3"]
web = "nginx"
requests = 9

[[claim]]
id = "nginx_lb3.lb.skips_dead_backend"
says = "traffic goes to servers that can take it"
kind = "lb.skips_dead_backend"
backends = ["web-1", "web-2", "web-3"]
web = "nginx"
backend = "web-1"
"#,
    ),
    (
        "mutants/ip_hash/mutant.toml",
        r#"fails = "nginx_lb3.lb.round_robin"
why = "the upstream hashes the client's address: one client always reaches the same server"

[[patch]]
file = "services/nginx-lb/nginx.conf"
replace = "    upstream backends {\n"
with = "    upstream backends {\n        ip_hash;\n"
"#,
    ),
    (
        "mutants/keeps_dead_backend/mutant.toml",
        r#"fails = "nginx_lb3.lb.skips_dead_backend"
why = "max_fails=0 never marks a server down and proxy_next_upstream off never retries another: every third request goes to the dead server and fails"

[[patch]]
file = "services/nginx-lb/nginx.conf"
replace = "        server {{ web-1.public }}:80;\n"
with = "        server {{ web-1.public }}:80 max_fails=0;\n"

[[patch]]
file = "services/nginx-lb/nginx.conf"
replace = "            proxy_pass http://backends;\n"
with = "            proxy_pass http://backends;\n            proxy_next_upstream off;\n"
"#,
    ),
];

/// Writes the design into a folder of its own and returns it.
fn write_design(test: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sp-own-design-{test}-{}", std::process::id()));
    let design = dir.join("nginx_lb3");
    for (rel, text) in FILES {
        let path = design.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    (dir, design)
}

fn check(
    design: &std::path::Path,
    extra: &[&str],
) -> (std::process::Output, String, crate::Verdicts) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stackproof"));
    cmd.arg("check").arg(design).args(extra);
    let (out, v) = run_with_report(cmd);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text, v)
}

#[test]
fn an_nginx_balancer_over_three_servers_checks_green_and_its_mutants_fail() {
    let (dir, design) = write_design("green");
    let (out, text, v) = check(&design, &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for id in ["dns.www_to_lb", "lb.round_robin", "lb.skips_dead_backend"] {
        assert!(v.is("PASS", &format!("nginx_lb3.{id}")), "{id}: {text}");
    }
    assert!(text.contains("web-1 3, web-2 3, web-3 3"), "{text}");
    // ip_hash: one client, one server.
    let (_, text, v) = check(
        &design,
        &["--mutant", "ip_hash", "--claim", "nginx_lb3.lb.round_robin"],
    );
    assert!(v.is("FAIL", "nginx_lb3.lb.round_robin"), "{text}");
    assert!(text.contains("of 9, not 3 ± 1"), "{text}");
    // No failure accounting, no retry: the dead server keeps its turn.
    let (_, text, v) = check(
        &design,
        &[
            "--mutant",
            "keeps_dead_backend",
            "--claim",
            "nginx_lb3.lb.skips_dead_backend",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(v.is("FAIL", "nginx_lb3.lb.skips_dead_backend"), "{text}");
    assert!(
        text.contains("the load balancer keeps sending requests to the dead backend"),
        "{text}"
    );
}

/// `lb.health_check` reads HAProxy's own state: on an Nginx balancer the
/// design is refused at load, saying so, before anything starts.
#[test]
fn a_kind_that_needs_haproxy_is_refused_on_an_nginx_balancer_at_load() {
    let (dir, design) = write_design("refused");
    let claims = design.join("claims.toml");
    let mut text = std::fs::read_to_string(&claims).unwrap();
    text.push_str(
        "\n[[claim]]\nid = \"nginx_lb3.lb.health_check\"\nsays = \"x\"\nkind = \"lb.health_check\"\nlb = \"lb-1\"\nbackend = \"web-1\"\nservice = \"nginx\"\n",
    );
    std::fs::write(&claims, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stackproof"))
        .arg("check")
        .arg(&design)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("lb.health_check"), "{stderr}");
    assert!(stderr.contains("HAProxy"), "{stderr}");
}
