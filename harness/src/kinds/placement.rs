//! Placement kinds: which services run where, from the hosts' own process tables.

use hickory_proto::rr::RecordType;

use super::common::req_failed;
use super::{Facts, Kind, Param, Params, Ty};
use crate::client::{self, DnsTransport};
use crate::failure::{CheckResult, Failure, ensure_eq};
use crate::measure::http;
use crate::recorder::Recorder;
use crate::stack::{Stack, WWW};

/// `placement.single_host`: everything on one server, and that server is the site.
pub const SINGLE_HOST: Kind = Kind {
    name: "placement.single_host",
    doc: "Each of `services` has processes on `host` and on no other host; `www` resolves to that host alone, and the client's TCP peer for the site is that host.",
    params: &[
        Param::required("host", Ty::Host, "the one server"),
        Param::required(
            "services",
            Ty::Services,
            "the components that must all run there",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.host.single_server"
says = "one server hosts all components"
kind = "placement.single_host"
host = "server-1"
services = ["nginx", "php-fpm", "mariadb"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(single_host),
};

async fn single_host(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let host = p.host("host");
    let services = p.list("services");
    let mut placement = Vec::new();
    for &service in &services {
        let mut on = Vec::new();
        for h in stack.hosts.values() {
            if !stack.pids(&h.name, service).await?.is_empty() {
                on.push(h.name.clone());
            }
        }
        placement.push((service, on));
    }
    let resolver = stack.client.resolver(DnsTransport::Udp)?;
    let dns: Vec<String> = client::query(&resolver, WWW, RecordType::A)
        .await
        .map_err(super::common::dns_failure)?
        .iter()
        .filter_map(|r| r.data.ip_addr().map(|ip| ip.to_string()))
        .collect();
    let path = "/static/hello.txt";
    let mark = stack.client.mark();
    let resp = stack
        .client
        .fresh
        .get(http(path))
        .send()
        .await
        .map_err(|e| req_failed(path, &e))?;
    let peer = stack
        .client
        .peer_of(&resp, mark)
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let addr = stack
        .host(host)
        .map_err(Failure::from)?
        .main_addr()
        .to_string();
    let evidence = format!(
        "{}; DNS → {}; client's TCP peer {peer}; {host} is {addr}",
        placement
            .iter()
            .map(|(s, on)| format!("{s} on [{}]", on.join(", ")))
            .collect::<Vec<_>>()
            .join(", "),
        dns.join(", "),
    );
    let expected: Vec<(&str, Vec<String>)> = services
        .iter()
        .map(|s| (*s, vec![host.to_string()]))
        .collect();
    ensure_eq("where each component runs", expected, placement, &evidence)?;
    ensure_eq("DNS answer", vec![addr.clone()], dns, &evidence)?;
    ensure_eq("client's TCP peer", addr, peer, &evidence)?;
    Ok(evidence)
}

/// The process families `placement.tiers` tells apart: any web server, any
/// PHP-FPM version, MariaDB or MySQL.
const FAMILIES: &[(&str, &[&str])] = &[
    ("web", &["nginx", "apache2", "httpd"]),
    ("php", &["php-fpm[0-9.]*"]),
    ("db", &["mariadbd", "mysqld"]),
];

/// `placement.tiers`: each tier on its own host, nothing else beside it.
pub const TIERS: Kind = Kind {
    name: "placement.tiers",
    doc: "Each host of `hosts` runs exactly its role of `roles` (in order) among the tiers: `web` (any web server: nginx, apache2, httpd), `php` (any PHP-FPM) and `db` (mariadbd, mysqld), read from its process table.",
    params: &[
        Param::required("hosts", Ty::Hosts, "the tier hosts"),
        Param::required(
            "roles",
            Ty::Texts,
            "their roles, in the same order: web, php or db",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.tiers.split"
says = "split components, each on its own server"
kind = "placement.tiers"
hosts = ["web-1", "app-1", "db-1"]
roles = ["web", "php", "db"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(tiers),
};

async fn tiers(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let (hosts, roles) = (p.list("hosts"), p.list("roles"));
    crate::failure::ensure_measured(
        hosts.len() == roles.len(),
        format!(
            "{} hosts but {} roles: give one role per host",
            hosts.len(),
            roles.len()
        ),
        "",
    )?;
    let mut seen = Vec::new();
    for &host in &hosts {
        let h = stack.host(host)?;
        let mut running = Vec::new();
        for (family, names) in FAMILIES {
            if h.exec(&format!("pgrep -x '{}'", names.join("|")))
                .await?
                .code
                == 0
            {
                running.push(family.to_string());
            }
        }
        seen.push((host.to_string(), running));
    }
    let evidence = seen
        .iter()
        .map(|(h, r)| format!("{h} runs [{}]", r.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    let expected: Vec<(String, Vec<String>)> = hosts
        .iter()
        .zip(&roles)
        .map(|(h, r)| (h.to_string(), vec![r.to_string()]))
        .collect();
    ensure_eq("what each tier's host runs", expected, seen, &evidence)?;
    Ok(evidence)
}
