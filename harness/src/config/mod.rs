//! Users' own configuration files, as they are on their servers, checked
//! by a design: `--config [HOST:]SERVER=PATH`. Each file is mapped onto the
//! run (addresses, certificate paths, domain, what cannot work in a
//! container), every mapping printed, and laid over the design's files for
//! the hosts that run that software. No address of the user's file is ever
//! contacted. Files are mapped in an order that lets addresses learned from
//! one (HAProxy's backends, keepalived's peers) give meaning to the same
//! addresses in the next (firewall rules, scrape targets).

pub mod apache;
pub mod haproxy;
pub mod iptables;
pub mod keepalived;
pub mod mariadb;
pub mod nginx;
pub mod php_fpm;
mod placeholders;
pub mod prometheus;
pub(crate) mod registry;
pub mod script;

#[cfg(test)]
mod fuzz;
mod users_file;
pub use users_file::read_users_file;

use std::path::{Path, PathBuf};

use crate::design::Design;
use crate::error::{Error, Result};

/// One backend of the design, as a mapped `server` line points at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Its host (`server-1`).
    pub host: String,
    /// Its address as a placeholder the run fills (`{{ server-1.private }}`).
    pub address: String,
}

/// A user's file mapped onto the run.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// The file as the server gets it.
    pub text: String,
    /// Every change, one line each (`haproxy.cfg:23: server web-01 ... -> server-1 ...`).
    pub lines: Vec<String>,
    /// What stackproof added for its own measuring (never what a claim measures).
    pub additions: Vec<String>,
    /// Traps in a file that loads (`redirect` without a code answers 302...).
    pub warnings: Vec<String>,
    /// What to write instead of what this server version refuses.
    pub hints: Vec<String>,
    /// Other files the mapping replaces (fixture path, text), beside the main one.
    pub files: Vec<(String, String)>,
    /// Addresses this file gave a meaning, for the files mapped after it.
    pub learned: Vec<(String, Known)>,
    /// Sections renamed to the design's names: (the run's name, the user's).
    pub renamed: Vec<(String, String)>,
}

/// One `--config [HOST:]SERVER=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigArg {
    /// One host of the design, when the hosts need different files.
    pub host: Option<String>,
    /// The server software (`haproxy`), as the registry names it.
    pub server: String,
    /// The user's file.
    pub path: PathBuf,
    /// How to name it when it is not the user's own file (one an install script wrote).
    pub origin: Option<String>,
}

impl std::str::FromStr for ConfigArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (left, path) = s.split_once('=').ok_or_else(|| {
            format!("`{s}`: write SERVER=PATH or HOST:SERVER=PATH, e.g. haproxy=./haproxy.cfg")
        })?;
        let (host, server) = match left.split_once(':') {
            Some((h, k)) => (Some(h.to_string()), k.to_string()),
            None => (None, left.to_string()),
        };
        if registry::server(&server).is_none() {
            return Err(format!(
                "`{server}` is not a server stackproof maps; it maps: {}",
                registry::names().join(", ")
            ));
        }
        Ok(ConfigArg {
            host,
            server,
            path: PathBuf::from(path),
            origin: None,
        })
    }
}

/// One `--address ADDR=HOST`: what an address of the user's files is in the
/// design, for files that only use addresses (firewall rules, scrape targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressArg {
    /// The user's address (`10.0.0.5`).
    pub address: String,
    /// The design's host it is (`lb-1`).
    pub host: String,
}

impl std::str::FromStr for AddressArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (address, host) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: write ADDRESS=HOST, e.g. 10.0.0.5=lb-1"))?;
        Ok(AddressArg {
            address: address.trim().to_string(),
            host: host.trim().to_string(),
        })
    }
}

/// Masks secrets in a line of a user's file: passwords, `auth` pairs, keys.
pub fn mask_secrets(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let mut out = Vec::with_capacity(words.len());
    let mut hide_next = false;
    for w in words {
        // `password = x`: the value is after the `=`.
        if hide_next && (w == "=" || w == ":") {
            out.push(w.to_string());
            continue;
        }
        if hide_next && !w.is_empty() {
            out.push("******".to_string());
            hide_next = false;
            continue;
        }
        let lower = w.to_ascii_lowercase();
        if [
            "password",
            "password:",
            "insecure-password",
            "auth_pass",
            "auth",
            "secret",
            "key",
        ]
        .contains(&lower.as_str())
        {
            hide_next = true;
            out.push(w.to_string());
        } else if let Some((key, _)) = w.split_once('=').filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k.contains("pass") || k.contains("secret")
        }) {
            // `password=x`, `MASTER_PASSWORD='x'`.
            out.push(format!("{key}=******"));
        } else if let Some((user, _)) = w.split_once(':').filter(|_| lower.contains("pass")) {
            out.push(format!("{user}:******"));
        } else {
            out.push(w.to_string());
        }
    }
    out.join(" ")
}

/// The design's backends for HAProxy: the `server` lines of its own
/// `web_backends` variable when it has one (the hosts and networks the
/// design means), else every host running a web server, at its main address.
pub fn backends(design: &Design) -> Vec<Backend> {
    if let Some(lines) = design.spec.vars.get("web_backends") {
        // `server server-1 {{ server-1.private }}:80 check`: the name, and the placeholder.
        let found: Vec<Backend> = lines
            .lines()
            .filter_map(|l| {
                let host = l
                    .trim()
                    .strip_prefix("server ")?
                    .split_whitespace()
                    .next()?;
                let (from, to) = (l.find("{{")?, l.find("}}")? + 2);
                Some(Backend {
                    host: host.to_string(),
                    address: l[from..to].to_string(),
                })
            })
            .collect();
        if !found.is_empty() {
            return found;
        }
    }
    design
        .spec
        .hosts
        .iter()
        .filter(|h| h.services.iter().any(|s| s == "nginx" || s == "apache"))
        .map(|h| Backend {
            host: h.name.clone(),
            address: format!("{{{{ {}.{} }}}}", h.name, h.networks[0]),
        })
        .collect()
}

/// An address of the user's files that stackproof has put a meaning on: the
/// run's placeholder for it and what it is (`web-1`, `the VIP`). Learned from
/// the files that say what an address is (HAProxy `server` lines, keepalived
/// peers and VIPs), used by those that only use addresses (firewall rules,
/// scrape targets, `bind-address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// `{{ web-1.private }}`.
    pub placeholder: String,
    /// `web-1`, or `the VIP`.
    pub what: String,
}

/// Every address the user's files have been mapped from so far.
pub type AddressBook = std::collections::BTreeMap<String, Known>;

/// What a mapper knows of the run while it maps one user file.
pub struct Target<'a> {
    /// The design the file is laid over.
    pub design: &'a Design,
    /// The host the file is mapped for (its own copy), when the kind maps per host.
    pub host: Option<&'a str>,
    /// Every host of the design that runs this software, in the design's order.
    pub running: Vec<&'a str>,
    /// The user's domain, when given with `--domain`.
    pub domain: Option<&'a str>,
    /// The run's domain.
    pub run_domain: &'a str,
    /// Addresses the user's other files already gave a meaning.
    pub book: &'a AddressBook,
}

impl Target<'_> {
    /// The network a host is reached on by its peers (see [`inner_network`]).
    pub fn inner_network(&self, host: &str) -> String {
        self.design
            .spec
            .host(host)
            .map(inner_network)
            .unwrap_or_else(|| "public".into())
    }

    /// `{{ host.net }}` on the network its peers reach it on.
    pub fn address_of(&self, host: &str) -> String {
        format!("{{{{ {host}.{} }}}}", self.inner_network(host))
    }

    /// What an address of the user's means in the run: known from another
    /// file, a host's own loopback, or nothing.
    pub fn lookup(&self, addr: &str) -> Option<Known> {
        self.book.get(addr).cloned()
    }
}

/// The network a host is reached on by its peers: `private` when it has
/// it (the tiers' network), else its first.
fn inner_network(host: &crate::spec::HostSpec) -> String {
    if host.networks.iter().any(|n| n == "private") {
        "private".into()
    } else {
        host.networks
            .first()
            .cloned()
            .unwrap_or_else(|| "public".into())
    }
}

/// Whether `addr` (no port) is this machine itself or every address:
/// words that keep their meaning in a container.
pub fn is_local(addr: &str) -> bool {
    matches!(
        addr,
        "127.0.0.1" | "localhost" | "0.0.0.0" | "*" | "::" | "[::]" | "::1" | "[::1]"
    )
}

/// Whether `word` looks like an IPv4 address (the only kind the run maps).
pub fn is_ipv4(word: &str) -> bool {
    word.parse::<std::net::Ipv4Addr>().is_ok()
}

/// The user's domain replaced by the run's everywhere in `text` (names,
/// paths, redirects), said in one mapping line.
pub fn replace_domain(
    text: String,
    domain: Option<String>,
    run_domain: &str,
    out: &mut Mapped,
) -> String {
    match domain.filter(|d| d != run_domain) {
        Some(d) => {
            let count = text.matches(d.as_str()).count();
            out.lines.push(format!(
                "domain {d} -> {run_domain} (the run's DNS serves www.{run_domain}; replaced in {count} place(s) of the file)"
            ));
            text.replace(d.as_str(), run_domain)
        }
        None => text,
    }
}

/// The file name to quote in mapping lines (`haproxy.cfg:12`).
pub fn file_label(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

/// The library's services that run `kind`'s server.
fn services_of(kind: &str) -> &'static [&'static str] {
    registry::server(kind).map_or(&[], |s| s.services)
}

/// Each (host, service) of `design` running `kind`'s server, in the design's order.
fn running<'a>(design: &'a Design, kind: &str) -> Vec<(&'a str, &'a str)> {
    let services = services_of(kind);
    design
        .spec
        .hosts
        .iter()
        .flat_map(|h| {
            h.services
                .iter()
                .filter(|s| services.contains(&s.as_str()))
                .map(move |s| (h.name.as_str(), s.as_str()))
        })
        .collect()
}

/// The hosts of `design` that run `kind`'s server, in the design's order.
pub fn hosts_running<'a>(design: &'a Design, kind: &str) -> Vec<&'a str> {
    let mut hosts: Vec<&str> = running(design, kind).into_iter().map(|(h, _)| h).collect();
    hosts.dedup();
    hosts
}

/// What `--config` did to a design: the overlay folder to lay over it and
/// everything to print before the claims.
#[derive(Debug, Default)]
pub struct Applied {
    /// The mapped files, laid out like the fixtures.
    pub overlay: Option<PathBuf>,
    /// One section per file: its mapping lines, additions, warnings.
    pub report: Vec<String>,
    /// Replacements for what the server refuses, to add to its own words.
    pub hints: Vec<String>,
    /// Each mapped file and the user's file it came from.
    pub sources: Vec<(PathBuf, PathBuf)>,
    /// Sections renamed to the design's names: (the run's name, the user's).
    pub renamed: Vec<(String, String)>,
}

impl Applied {
    /// `message` with the mapped files' paths replaced by the user's own
    /// (a server's refusal then names the file the user knows).
    pub fn in_users_terms(&self, message: &str) -> String {
        let mut m = message.to_string();
        // A server quotes a section by the name it ran under ('www'):
        // the user wrote another.
        for (run, user) in &self.renamed {
            m = m.replace(&format!("'{run}'"), &format!("'{user}'"));
        }
        for (mapped, user) in &self.sources {
            m = m.replace(
                &mapped.display().to_string(),
                &format!(
                    "{} (as mapped onto the run; same line numbers)",
                    user.display()
                ),
            );
        }
        m.lines().map(mask_secrets).collect::<Vec<_>>().join("\n")
    }
}

/// The first template placeholder left in a user's file (`{{VRID}}`,
/// `{% if %}`, `<%= @vip %>`), with its line number, outside comments.
fn unfilled_template(text: &str) -> Option<(usize, String)> {
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with('#') || code.starts_with("//") || code.starts_with(';') {
            continue;
        }
        for (open, close) in [("{{", "}}"), ("{%", "%}"), ("<%", "%>")] {
            if let Some(start) = line.find(open)
                && let Some(len) = line[start..].find(close)
            {
                return Some((i + 1, line[start..start + len + close.len()].to_string()));
            }
        }
    }
    None
}

/// The order files are mapped in: the registry's.
fn mapping_order(kind: &str) -> usize {
    registry::SERVERS
        .iter()
        .position(|s| s.name == kind)
        .unwrap_or(usize::MAX)
}

/// Maps each user file onto `design` and writes the results to a fresh
/// folder under `scratch`, laid out like the fixtures: the service's own
/// config file, for every host that runs that service, or under
/// `hosts/<host>/` for one host (`HOST:SERVER=PATH`, and servers whose files
/// name the host itself, such as keepalived's peers).
pub fn apply(
    design: &Design,
    configs: &[ConfigArg],
    domain: Option<&str>,
    addresses: &[AddressArg],
    scratch: &Path,
) -> Result<Applied> {
    let mut applied = Applied::default();
    if configs.is_empty() {
        return Ok(applied);
    }
    std::fs::create_dir_all(scratch)
        .map_err(Error::io(format!("create `{}`", scratch.display())))?;
    let mut ordered: Vec<&ConfigArg> = configs.iter().collect();
    // A file for one host after the file for all of them: it wins there.
    ordered.sort_by_key(|c| (mapping_order(&c.server), c.host.is_some()));
    let mut book = users_addresses(design, addresses)?;
    for c in ordered {
        let running = running(design, &c.server);
        let text = checked_users_file(design, c, &running)?;
        let server = registry::server(&c.server).unwrap_or_else(|| {
            unreachable!("`{}` is checked when the argument is parsed", c.server)
        });
        let targets: Vec<(&str, &str)> = running
            .iter()
            .copied()
            .filter(|(h, _)| c.host.as_deref().is_none_or(|want| want == *h))
            .collect();
        // Kinds whose files name the host itself get a copy mapped for each host.
        let per_host = c.host.is_some() || server.per_host;
        let groups: Vec<Vec<(&str, &str)>> = if per_host {
            targets.iter().map(|t| vec![*t]).collect()
        } else {
            vec![targets.clone()]
        };
        for group in groups {
            let (first_host, service) = group[0];
            let target = Target {
                design,
                host: per_host.then_some(first_host),
                running: running.iter().map(|(h, _)| *h).collect(),
                domain,
                run_domain: crate::stack::ZONE,
                book: &book,
            };
            let (mapped, rel) = map_one(c, &text, &target, service, &group)?;
            let prefix = if per_host {
                format!("hosts/{first_host}/")
            } else {
                String::new()
            };
            let written = write_mapped(scratch, &prefix, &rel, &mapped)?;
            applied.report.push(mapping_section(c, &group, &mapped));
            applied.hints.extend(mapped.hints.iter().cloned());
            applied.renamed.extend(mapped.renamed.iter().cloned());
            applied.sources.push((written, c.path.clone()));
            for (addr, known) in mapped.learned {
                book.entry(addr).or_insert(known);
            }
            applied.overlay = Some(scratch.to_path_buf());
        }
    }
    if let Some(warning) = half_a_pair(design, configs) {
        applied.report.push(warning);
    }
    Ok(applied)
}

/// What the user said their addresses are (`--address 10.0.0.5=lb-1`).
fn users_addresses(design: &Design, addresses: &[AddressArg]) -> Result<AddressBook> {
    let mut book = AddressBook::new();
    for a in addresses {
        let Some(h) = design.spec.host(&a.host) else {
            return Err(Error::Unknown {
                kind: "host (in --address)",
                name: a.host.clone(),
                known: design
                    .spec
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        book.insert(
            a.address.clone(),
            Known {
                placeholder: format!("{{{{ {}.{} }}}}", a.host, inner_network(h)),
                what: a.host.clone(),
            },
        );
    }
    Ok(book)
}

/// The user's file `c`, read, once it is known to have somewhere to go
/// (`running`: the hosts that run its server) and no unfilled placeholder.
fn checked_users_file(design: &Design, c: &ConfigArg, running: &[(&str, &str)]) -> Result<String> {
    if running.is_empty() {
        return Err(Error::InvalidFixture {
            path: c.path.clone(),
            detail: format!(
                "no host of {} runs {} ({}), so there is nowhere to put this file",
                design.name,
                c.server,
                services_of(&c.server).join(" or ")
            ),
        });
    }
    if let Some(h) = &c.host
        && !running.iter().any(|(name, _)| name == h)
    {
        return Err(Error::InvalidFixture {
            path: c.path.clone(),
            detail: format!(
                "host `{h}` does not run {}; these do: {}",
                c.server,
                running
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let text = read_users_file(&c.path, &c.server)?;
    if let Some((n, placeholder)) = unfilled_template(&text) {
        return Err(Error::InvalidFixture {
            path: c.path.clone(),
            detail: format!(
                "line {n}: `{placeholder}` is a template placeholder nobody filled in: give the file as your template tool writes it for the server (or fill it in by hand)"
            ),
        });
    }
    let server = registry::server(&c.server)
        .unwrap_or_else(|| unreachable!("`{}` is checked when the argument is parsed", c.server));
    if let Some(found) = placeholders::find(server.name, server.value_sites, &text) {
        return Err(Error::InvalidFixture {
            path: c.path.clone(),
            detail: found.explain(server.display),
        });
    }
    Ok(text)
}

/// Writes the mapped file (at `rel`) and its side files under
/// `scratch/prefix`; returns where the mapped file went.
fn write_mapped(scratch: &Path, prefix: &str, rel: &str, mapped: &Mapped) -> Result<PathBuf> {
    let mut main_target = None;
    for (i, (rel, body)) in std::iter::once((rel, &mapped.text))
        .chain(mapped.files.iter().map(|(r, b)| (r.as_str(), b)))
        .enumerate()
    {
        let path = scratch.join(format!("{prefix}{rel}"));
        // A side file never replaces a user's own file mapped before it
        // (a site file given beside a whole nginx.conf).
        if i > 0 && path.exists() {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("a file in a folder"))
            .map_err(Error::io(format!("create `{}`", path.display())))?;
        std::fs::write(&path, body).map_err(Error::io(format!("write `{}`", path.display())))?;
        main_target.get_or_insert(path);
    }
    Ok(main_target.expect("one file written"))
}

/// The mapping report's section for one file mapped for `group`.
fn mapping_section(c: &ConfigArg, group: &[(&str, &str)], mapped: &Mapped) -> String {
    let hosts: Vec<&str> = group.iter().map(|(h, _)| *h).collect();
    let mut services: Vec<&str> = group.iter().map(|(_, s)| *s).collect();
    services.dedup();
    let mut section = vec![format!(
        "{} ({}) -> {} on {}",
        c.origin
            .clone()
            .unwrap_or_else(|| c.path.display().to_string()),
        c.server,
        services.join(", "),
        hosts.join(", ")
    )];
    section.extend(
        mapped
            .lines
            .iter()
            .map(|l| format!("  {}", mask_secrets(l))),
    );
    section.extend(mapped.additions.iter().map(|l| format!("  added: {l}")));
    section.extend(
        mapped
            .warnings
            .iter()
            .map(|l| format!("  warning: {}", mask_secrets(l))),
    );
    section.join("\n")
}

/// A VRRP pair is one configuration in two files: half of it the user's
/// and half the design's rarely agree (version, password, advert interval).
fn half_a_pair(design: &Design, configs: &[ConfigArg]) -> Option<String> {
    let pair = hosts_running(design, "keepalived");
    let given: Vec<&str> = pair
        .iter()
        .copied()
        .filter(|h| {
            configs.iter().any(|c| {
                c.server == "keepalived" && c.host.as_deref().is_none_or(|want| want == *h)
            })
        })
        .collect();
    if given.is_empty() || given.len() >= pair.len() {
        return None;
    }
    let rest: Vec<&str> = pair
        .iter()
        .copied()
        .filter(|h| !given.contains(h))
        .collect();
    Some(format!(
        "keepalived: warning: your file is on {} only; {} keeps the design's (VRRPv3, adverts every 0.1 s), so the pair may not agree on a master: give each peer its file (HOST:keepalived=PATH)",
        given.join(", "),
        rest.join(", ")
    ))
}

/// Maps one user file for `group` (the hosts that get this copy), returning
/// it and where it goes among the fixtures.
fn map_one(
    c: &ConfigArg,
    text: &str,
    target: &Target,
    service: &str,
    group: &[(&str, &str)],
) -> Result<(Mapped, String)> {
    let server = registry::server(&c.server)
        .unwrap_or_else(|| unreachable!("`{}` is checked when the argument is parsed", c.server));
    (server.map)(&registry::MapInput {
        arg: c,
        text,
        target,
        service,
        group,
    })
}

/// A mapper's view of `design` for unit tests: `host` its copy's host,
/// `running` the hosts that run the server.
#[cfg(test)]
pub(crate) fn test_target<'a>(
    design: &'a Design,
    book: &'a AddressBook,
    host: Option<&'a str>,
    running: Vec<&'a str>,
) -> Target<'a> {
    Target {
        design,
        host,
        running,
        domain: None,
        run_domain: "foobar.com",
        book,
    }
}

#[cfg(test)]
mod template_tests {
    #[test]
    fn a_placeholder_left_in_a_file_is_found_with_its_line() {
        let text =
            "vrrp_instance VI_1 {\n    # state {{ STATE }} from ansible\n    state {{STATE}}\n}\n";
        assert_eq!(
            super::unfilled_template(text),
            Some((3, "{{STATE}}".to_string()))
        );
        assert_eq!(super::unfilled_template("bind *:80\n"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_args_parse_and_name_what_exists() {
        let c: ConfigArg = "haproxy=./lb/haproxy.cfg".parse().unwrap();
        assert_eq!((c.host, c.server.as_str()), (None, "haproxy"));
        let c: ConfigArg = "lb-2:keepalived=k.conf".parse().unwrap();
        assert_eq!(c.host.as_deref(), Some("lb-2"));
        let e = "haprox=x".parse::<ConfigArg>().unwrap_err();
        assert!(e.contains("haproxy, keepalived, nginx"), "{e}");
        assert!(
            "haproxy"
                .parse::<ConfigArg>()
                .unwrap_err()
                .contains("SERVER=PATH")
        );
    }

    #[test]
    fn secrets_are_masked() {
        assert_eq!(
            mask_secrets("stats auth admin:hunter2"),
            "stats auth ******"
        );
        assert_eq!(
            mask_secrets("user alice insecure-password s3cret"),
            "user alice insecure-password ******"
        );
        assert_eq!(mask_secrets("auth_pass 42 x"), "auth_pass ****** x");
        assert_eq!(mask_secrets("password = s3cret"), "password = ******");
        assert_eq!(mask_secrets("password=s3cret"), "password=******");
        assert_eq!(
            mask_secrets("  basic_auth: { username: a, password: s3cret }"),
            "  basic_auth: { username: a, password: ****** }"
        );
        assert_eq!(
            mask_secrets("server web-01 1.2.3.4:80 check"),
            "server web-01 1.2.3.4:80 check"
        );
    }
}
