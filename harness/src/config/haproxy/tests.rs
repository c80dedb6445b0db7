//! The mapping of users' HAProxy files, on the files of tests/configs/haproxy/.

use super::*;

fn backends() -> Vec<Backend> {
    ["server-1", "server-2"]
        .iter()
        .map(|h| Backend {
            host: h.to_string(),
            address: format!("{{{{ {h}.private }}}}"),
        })
        .collect()
}

fn mapped(name: &str) -> Mapped {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs/haproxy")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    map(&path, &text, &backends(), None, "foobar.com").unwrap()
}

#[test]
fn debian_default_keeps_its_global_and_maps_the_public_servers() {
    let m = mapped("lb_debian_default.cfg");
    let all = m.lines.join("\n");
    assert!(
        all.contains("server 4211-web-01 100.25.34.211:80 -> server-1 {{ server-1.private }}:80"),
        "{all}"
    );
    assert!(
        all.contains("server 4211-web-02 54.160.85.72:80 -> server-2"),
        "{all}"
    );
    // Debian's chroot, user and admin socket exist on the run's host: kept as they are.
    assert!(
        !all.contains("chroot") && !all.contains("user haproxy ->"),
        "{all}"
    );
    assert!(m.additions.is_empty(), "{:?}", m.additions);
    assert!(!m.text.contains("100.25.34.211") && !m.text.contains("54.160.85.72"));
    assert!(m.text.contains("\tchroot /var/lib/haproxy\n"));
    // Every line keeps its number.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/haproxy/lb_debian_default.cfg");
    assert_eq!(
        std::fs::read_to_string(path).unwrap().lines().count(),
        m.text.lines().count()
    );
}

#[test]
fn sections_take_the_designs_names_and_references_follow() {
    let m = mapped("https_own_names_exporter.cfg");
    for renamed in [
        "frontend https_front -> www",
        "frontend prometheus -> metrics",
        "backend http_back -> web",
    ] {
        assert!(
            m.lines.iter().any(|l| l.contains(renamed)),
            "{renamed}: {:?}",
            m.lines
        );
    }
    assert!(m.text.contains("frontend www\n"), "{}", m.text);
    assert!(m.text.contains("default_backend web\n"), "{}", m.text);
    assert!(m.text.contains("backend web\n"), "{}", m.text);
    // The redirecting frontend on 80 keeps its name: only one can be the site's.
    assert!(m.text.contains("frontend http_front\n"), "{}", m.text);
    // use_backend follows too; names that are already the design's stay.
    let text = "frontend site\n    bind *:80\n    use_backend pool if { path_beg /app }\n    default_backend pool\nbackend pool\n    server a 10.0.0.1:80 check\n";
    let m = map(Path::new("h.cfg"), text, &backends(), None, "foobar.com").unwrap();
    assert!(
        m.text.contains("use_backend web if { path_beg /app }"),
        "{}",
        m.text
    );
    assert!(m.text.contains("frontend www\n"), "{}", m.text);
    let m = mapped("lb_listen_style.cfg");
    assert!(
        !m.lines.iter().any(|l| l.contains("by the name the design")),
        "{:?}",
        m.lines
    );
}

#[test]
fn a_loopback_server_stays_the_load_balancer_and_takes_no_backend() {
    let m = mapped("https_acme_backend.cfg");
    let all = m.lines.join("\n");
    assert!(
        all.contains("server letsencrypt 127.0.0.1:54321 -> kept (the load balancer itself"),
        "{all}"
    );
    assert!(
        m.text.contains("server letsencrypt 127.0.0.1:54321"),
        "{}",
        m.text
    );
    // The two web servers still map onto the design's two backends.
    assert!(
        all.contains("server 1234-web-01 35.174.1.10:80 -> "),
        "{all}"
    );
    assert!(
        all.contains("server 1234-web-02 52.91.2.20:80 -> "),
        "{all}"
    );
    assert!(!all.contains("not mapped"), "{all}");
}

#[test]
fn certificates_and_the_domain_become_the_runs() {
    let m = mapped("https_letsencrypt.cfg");
    let all = m.lines.join("\n");
    assert!(
        all.contains("crt /etc/letsencrypt/live/www.4211.tech/haproxy.pem -> /etc/haproxy/www.pem"),
        "{all}"
    );
    assert!(all.contains("domain 4211.tech -> foobar.com"), "{all}");
    assert!(
        !m.text.contains("4211.tech") && !m.text.contains("letsencrypt"),
        "{}",
        m.text
    );
    assert_eq!(
        find_domain("bind :443 ssl crt /etc/haproxy/certs/www.shop.example.pem").as_deref(),
        Some("shop.example")
    );
    assert_eq!(
        find_domain("acl is_www hdr(host) -i www.holberton.io").as_deref(),
        Some("holberton.io")
    );
    assert_eq!(
        find_domain("redirect prefix https://www.x.org code 301").as_deref(),
        Some("x.org")
    );
}

#[test]
fn traps_are_warned_of_and_removed_directives_get_their_replacement() {
    let m = mapped("https_hsts_no_code.cfg");
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("no `code`") && w.contains("302")),
        "{:?}",
        m.warnings
    );
    let m = mapped("lb_two_frontends_port80.cfg");
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("binds port 80") && w.contains("frontend main")),
        "{:?}",
        m.warnings
    );
    let m = mapped("lb_1x_directives.cfg");
    assert!(
        m.hints
            .iter()
            .any(|h| h.contains(":16: `reqadd`") && h.contains("http-request add-header")),
        "{:?}",
        m.hints
    );
    assert!(
        m.hints
            .iter()
            .any(|h| h.contains("`rspadd`") && h.contains("http-response add-header")),
        "{:?}",
        m.hints
    );
    // No admin socket of its own: stackproof adds one, at the end, and says
    // so; its global maxconn gets `no strict-limits` (said with its line).
    assert_eq!(m.additions.len(), 2, "{:?}", m.additions);
    assert!(
        m.text.trim_end().ends_with(
            "stats socket /run/haproxy/admin.sock mode 660 level admin\n    no strict-limits"
        ),
        "{}",
        m.text
    );
    assert!(m.additions[1].contains("maxconn"), "{:?}", m.additions);
    let m = mapped("https_server_no_port.cfg");
    assert!(
        m.warnings.iter().any(|w| w.contains("has no port")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn more_servers_than_backends_are_left_out_and_old_listen_lines_rebound() {
    let m = mapped("lb_three_servers.cfg");
    assert!(
        m.lines
            .iter()
            .any(|l| l.contains("web-03 3.94.181.29:80 -> not mapped")),
        "{:?}",
        m.lines
    );
    assert!(
        !m.text
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("3.94.181.29"))
    );
    let m = map(
        Path::new("haproxy.cfg"),
        "listen web 203.0.113.7:80\n    server a 1.2.3.4:80\n",
        &backends(),
        None,
        "foobar.com",
    )
    .unwrap();
    assert!(
        m.hints
            .iter()
            .any(|h| h.contains("haproxy.cfg:1") && h.contains("bind 203.0.113.7:80")),
        "{:?}",
        m.hints
    );
}

#[test]
fn an_address_that_cannot_be_mapped_stops_before_anything_starts() {
    let text = "resolvers dns\n    nameserver google 8.8.8.8:53\n";
    let e = map(
        Path::new("haproxy.cfg"),
        text,
        &backends(),
        None,
        "foobar.com",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("line 2") && e.to_string().contains("never contacts"),
        "{e}"
    );
}

#[test]
fn an_open_stats_page_and_tls_off_443_are_what_a_reviewer_would_say() {
    let text = "frontend www\n    bind *:80\n    bind *:403 ssl crt /etc/ssl/site.pem\n    default_backend web\nlisten stats\n    bind *:8404\n    stats enable\n    stats uri /stats\nlisten guarded\n    bind *:8405\n    stats uri /s\n    stats auth admin:secret\nbackend web\n    server a 10.0.0.1:80\n";
    let m = map(
        Path::new("haproxy.cfg"),
        text,
        &backends(),
        None,
        "foobar.com",
    )
    .unwrap();
    let all = m.warnings.join("\n");
    assert!(
        all.contains("haproxy.cfg:3: TLS is bound on port 403, not 443"),
        "{all}"
    );
    assert!(
        all.contains(
            "haproxy.cfg:7: `listen stats` serves HAProxy's stats page with no `stats auth`"
        ),
        "{all}"
    );
    assert!(!all.contains("`listen guarded`"), "{all}");
}

#[test]
fn a_cipher_list_only_rsa_can_serve_asks_for_an_rsa_certificate() {
    use super::rsa_only;
    assert!(rsa_only(
        "kEECDH+aRSA+AES:kRSA+AES:+AES256:RC4-SHA:!kEDH:!LOW:!EXP:!MD5:!aNULL:!eNULL"
    ));
    assert!(rsa_only(
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
    ));
    // Mozilla's intermediate list names both, and generic lists leave it open.
    assert!(!rsa_only(
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
    ));
    assert!(!rsa_only("HIGH:!aNULL:!MD5"));
    assert!(!rsa_only(
        "ECDH+AESGCM:DH+AESGCM:ECDH+AES256:!aNULL:!MD5:!DSS"
    ));
}
