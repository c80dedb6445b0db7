//! A user's `haproxy.cfg`, exactly as it is on their server, mapped onto
//! the run: backend `server` lines onto the design's backends in order,
//! certificate paths onto the run's certificate, the user's domain onto
//! the run's, specific bind addresses onto the container's, and what cannot
//! work in a container (a chroot that is not there, a user that does not
//! exist, a remote log target) adapted. Every change is one line of
//! [`Mapped::lines`]; nothing of the user's file is dropped silently, and no
//! address of it is ever contacted: an address the mapping cannot place
//! stops the run before anything starts.

use std::path::Path;

use super::{Backend, Mapped, mask_secrets};
use crate::error::{Error, Result};

/// Where the run's certificate and key (one PEM, as HAProxy wants) are on the host.
pub const RUN_PEM: &str = "/etc/haproxy/www.pem";
/// The run's CA, where a `ca-file` is mapped.
const RUN_CA: &str = "/etc/haproxy/ca.pem";
/// RFC 7919's ffdhe2048 group, where an `ssl-dh-param-file` is mapped.
const RUN_DH: &str = "/etc/haproxy/ffdhe2048.pem";
/// The error pages the run's package installs (`/etc/haproxy/errors/<code>.http`).
const PACKAGE_ERROR_CODES: &[&str] = &["400", "403", "408", "500", "502", "503", "504"];
/// The admin socket stackproof reads HAProxy's own view from.
const ADMIN_SOCKET: &str = "/run/haproxy/admin.sock";
/// What the server image has, for `chroot`, `user` and `group`.
const IMAGE_CHROOT: &str = "/var/lib/haproxy";
const IMAGE_USERS: &[&str] = &["haproxy", "root", "nobody", "www-data"];

/// Section keywords: a line starting with one opens a section.
const SECTIONS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "peers",
    "resolvers",
    "userlist",
    "cache",
    "program",
    "http-errors",
    "ring",
    "mailers",
];

/// Directives HAProxy 2.1 removed, and what replaces each in 2.x.
const REMOVED: &[(&str, &str)] = &[
    ("reqadd", "http-request add-header <name> <value>"),
    ("reqdel", "http-request del-header <name>"),
    ("reqidel", "http-request del-header <name>"),
    (
        "reqrep",
        "http-request replace-header / replace-path / replace-uri",
    ),
    (
        "reqirep",
        "http-request replace-header / replace-path / replace-uri",
    ),
    ("reqallow", "http-request allow if <condition>"),
    ("reqiallow", "http-request allow if <condition>"),
    ("reqdeny", "http-request deny if <condition>"),
    ("reqideny", "http-request deny if <condition>"),
    ("reqpass", "(nothing: drop it)"),
    ("reqipass", "(nothing: drop it)"),
    ("reqtarpit", "http-request tarpit if <condition>"),
    ("reqitarpit", "http-request tarpit if <condition>"),
    ("rspadd", "http-response add-header <name> <value>"),
    ("rspdel", "http-response del-header <name>"),
    ("rspidel", "http-response del-header <name>"),
    (
        "rsprep",
        "http-response replace-header <name> <regex> <replacement>",
    ),
    (
        "rspirep",
        "http-response replace-header <name> <regex> <replacement>",
    ),
    ("rspdeny", "http-response deny if <condition>"),
    ("rspideny", "http-response deny if <condition>"),
    ("block", "http-request deny if <condition>"),
];

/// The section names the built-in designs' HAProxy files use, which their
/// claims' queries name (`haproxy_frontend_http_requests_total{proxy="www"}`,
/// the response times of `proxy="web"`).
const SITE_FRONTEND: &str = "www";
const WEB_BACKEND: &str = "web";
const METRICS_FRONTEND: &str = "metrics";

/// The user's sections to be known by the design's names: (frontends,
/// backends), each `(user's name, design's name, why)`. The site's
/// frontend is the one bound to 443 with TLS, else to 80; its default
/// backend is the web backend; a frontend serving HAProxy's Prometheus
/// exporter is the metrics one. A name already the design's, or taken by
/// another section, stays; `listen` sections (a frontend and a backend in
/// one) keep theirs.
type Renames = (
    Vec<(String, &'static str, &'static str)>,
    Vec<(String, &'static str, &'static str)>,
);

fn section_renames(text: &str) -> Renames {
    struct Front {
        name: String,
        tls_443: bool,
        port_80: bool,
        exporter: bool,
        default_backend: Option<String>,
    }
    let (mut fronts, mut backs): (Vec<Front>, Vec<String>) = (Vec::new(), Vec::new());
    let mut in_front = false;
    for raw in text.lines() {
        let words: Vec<&str> = raw
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let Some(&first) = words.first() else {
            continue;
        };
        if SECTIONS.contains(&first) {
            in_front = first == "frontend";
            let name = words.get(1).copied().unwrap_or("").to_string();
            match first {
                "frontend" => fronts.push(Front {
                    name,
                    tls_443: false,
                    port_80: false,
                    exporter: false,
                    default_backend: None,
                }),
                "backend" => backs.push(name),
                _ => {}
            }
            continue;
        }
        let Some(f) = fronts.last_mut().filter(|_| in_front) else {
            continue;
        };
        match first {
            "bind" => {
                let port = words
                    .get(1)
                    .and_then(|a| a.rsplit(':').next())
                    .unwrap_or("");
                f.tls_443 |= port == "443" && words.contains(&"ssl");
                f.port_80 |= port == "80";
            }
            "default_backend" => f.default_backend = words.get(1).map(|b| b.to_string()),
            _ => {}
        }
        f.exporter |= words.contains(&"prometheus-exporter");
    }
    let mut front_renames = Vec::new();
    let mut back_renames = Vec::new();
    let front_free = |want: &str| fronts.iter().all(|f| f.name != want);
    let site = fronts
        .iter()
        .find(|f| f.tls_443)
        .or_else(|| fronts.iter().find(|f| f.port_80 && !f.exporter));
    if let Some(site) = site {
        if site.name != SITE_FRONTEND && front_free(SITE_FRONTEND) {
            front_renames.push((site.name.clone(), SITE_FRONTEND, "the site's frontend"));
        }
        if let Some(b) = &site.default_backend
            && b != WEB_BACKEND
            && backs.contains(b)
            && !backs.iter().any(|b| b == WEB_BACKEND)
        {
            back_renames.push((b.clone(), WEB_BACKEND, "the web servers' backend"));
        }
    }
    if let Some(m) = fronts.iter().find(|f| f.exporter)
        && m.name != METRICS_FRONTEND
        && front_free(METRICS_FRONTEND)
    {
        front_renames.push((
            m.name.clone(),
            METRICS_FRONTEND,
            "the Prometheus exporter's frontend",
        ));
    }
    (front_renames, back_renames)
}

/// Maps the user's `text` (from `file`) onto the run. `backends` are the
/// design's, in order; `domain` the user's domain when given (`--domain`),
/// else found in the file; `run_domain` the run's.
// An arm's inner `if` is not its guard: a directive the arm takes and
// leaves alone must not fall through to the arms after it.
#[allow(clippy::collapsible_match)]
pub fn map(
    file: &Path,
    text: &str,
    backends: &[Backend],
    domain: Option<&str>,
    run_domain: &str,
) -> Result<Mapped> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "haproxy.cfg".into());
    let at = |n: usize| format!("{name}:{n}");
    let mut out = Mapped::default();
    let domain = domain.map(str::to_string).or_else(|| find_domain(text));
    let mut section = String::new();
    let mut servers_in_section = 0;
    let mut has_admin_socket = false;
    // (port, section) of every bind, for the "two frontends on one port" trap.
    let mut binds: Vec<(String, String, usize)> = Vec::new();
    let mut lines = Vec::new();
    let (front_renames, back_renames) = section_renames(text);
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = code.split_whitespace().collect();
        let Some(&first) = words.first() else {
            lines.push(raw.to_string());
            continue;
        };
        if SECTIONS.contains(&first) {
            section = format!("{first} {}", words.get(1).copied().unwrap_or(""))
                .trim()
                .to_string();
            servers_in_section = 0;
            let mut line = raw.to_string();
            let renames = match first {
                "frontend" => &front_renames,
                "backend" => &back_renames,
                _ => &Vec::new(),
            };
            if let Some(old) = words.get(1)
                && let Some((_, new, what)) = renames.iter().find(|(o, _, _)| o == old)
            {
                line = replace_words(&line, &[(old, new)]);
                out.lines.push(format!(
                    "{}: {first} {old} -> {new} ({what}, by the name the design's monitoring and claims use)",
                    at(n)
                ));
            }
            // HAProxy 1.x style: `listen www 0.0.0.0:80` binds on the section's
            // own line, which 2.x refuses: said beside the server's own refusal.
            if let Some(addr) = words.get(2).filter(|a| a.contains(':')) {
                out.hints.push(format!(
                    "{}: an address on the `{first}` line is HAProxy 1.x syntax this 2.6 server refuses; write `{first} {}` and, on the next line, `bind {addr}`",
                    at(n),
                    words.get(1).copied().unwrap_or("")
                ));
            }
            lines.push(line);
            continue;
        }
        if let Some((_, instead)) = REMOVED.iter().find(|(d, _)| *d == first) {
            out.hints.push(format!(
                "{}: `{first}` was removed in HAProxy 2.1 (this server is 2.6); write `{instead}` instead",
                at(n)
            ));
        }
        let mut line = raw.to_string();
        if matches!(first, "default_backend" | "use_backend")
            && let Some(old) = words.get(1)
            && let Some((_, new, _)) = back_renames.iter().find(|(o, _, _)| o == old)
        {
            line = replace_words(&line, &[(old, new)]);
        }
        match first {
            "server" if section.starts_with("backend") || section.starts_with("listen") => {
                let (user_name, addr) = (
                    words.get(1).copied().unwrap_or(""),
                    words.get(2).copied().unwrap_or(""),
                );
                let port = addr
                    .rsplit_once(':')
                    .map(|(_, p)| p.to_string())
                    .filter(|p| p.parse::<u16>().is_ok());
                let bare = addr.rsplit_once(':').map_or(addr, |(a, _)| a);
                if matches!(bare, "127.0.0.1" | "localhost" | "::1" | "[::1]") {
                    // The load balancer itself (certbot's standalone challenge
                    // server behind an ACME backend): not a web backend.
                    out.lines.push(format!(
                        "{}: server {user_name} {addr} -> kept (the load balancer itself, not one of the design's backends)",
                        at(n)
                    ));
                    lines.push(line);
                    continue;
                }
                match backends.get(servers_in_section) {
                    Some(b) => {
                        let target = match &port {
                            Some(p) => format!("{}:{p}", b.address),
                            None => b.address.clone(),
                        };
                        line = replace_words(raw, &[(user_name, &b.host), (addr, &target)]);
                        let bare = addr.rsplit_once(':').map_or(addr, |(a, _)| a);
                        if !bare.is_empty() && !super::is_local(bare) {
                            out.learned.push((
                                bare.to_string(),
                                super::Known {
                                    placeholder: b.address.clone(),
                                    what: b.host.clone(),
                                },
                            ));
                        }
                        out.lines.push(format!(
                            "{}: server {user_name} {addr} -> {} {target}{}",
                            at(n),
                            b.host,
                            if port.is_none() {
                                " (no port: HAProxy connects on the port the client used, 443 behind TLS)"
                            } else {
                                ""
                            }
                        ));
                        if port.is_none() {
                            out.warnings.push(format!(
                                "{}: server {user_name} has no port: HAProxy connects to it on the port each client connected to (443 for HTTPS), where the web server may not listen",
                                at(n)
                            ));
                        }
                    }
                    None => {
                        line = format!(
                            "# stackproof: not mapped, the design has {} backend(s): {raw}",
                            backends.len()
                        );
                        out.lines.push(format!(
                            "{}: server {user_name} {addr} -> not mapped (the design has {} backend(s)); left out",
                            at(n),
                            backends.len()
                        ));
                    }
                }
                servers_in_section += 1;
            }
            "server-template" => {
                return Err(Error::InvalidFixture {
                    path: file.to_path_buf(),
                    detail: format!(
                        "line {n}: `server-template` resolves names the run cannot map; list the servers with `server` lines"
                    ),
                });
            }
            "bind" => {
                let addr = words.get(1).copied().unwrap_or("");
                let (host, port) = addr.rsplit_once(':').unwrap_or(("", addr));
                if !host.is_empty()
                    && host != "*"
                    && host != "0.0.0.0"
                    && host != "::"
                    && host != "[::]"
                {
                    line = replace_words(&line, &[(addr, &format!("*:{port}"))]);
                    out.lines.push(format!(
                        "{}: bind {addr} -> *:{port} (the container's own addresses)",
                        at(n)
                    ));
                }
                binds.push((port.to_string(), section.clone(), n));
                if let Some(pos) = words.iter().position(|w| *w == "crt")
                    && let Some(path) = words.get(pos + 1)
                {
                    line = replace_words(&line, &[(path, RUN_PEM)]);
                    out.lines.push(format!(
                        "{}: crt {path} -> {RUN_PEM} (the run's certificate and key)",
                        at(n)
                    ));
                }
                if words.contains(&"crt-list") {
                    return Err(Error::InvalidFixture {
                        path: file.to_path_buf(),
                        detail: format!("line {n}: `crt-list` is not mapped yet; use `crt <file>`"),
                    });
                }
            }
            "ssl-dh-param-file" if section == "global" => {
                let path = words.get(1).copied().unwrap_or("");
                if path != RUN_DH {
                    line = replace_words(raw, &[(path, RUN_DH)]);
                    out.lines.push(format!(
                        "{}: ssl-dh-param-file {path} -> {RUN_DH} (RFC 7919's ffdhe2048 group, the run's own file)",
                        at(n)
                    ));
                }
            }
            "errorfile" => {
                let (code, path) = (
                    words.get(1).copied().unwrap_or(""),
                    words.get(2).copied().unwrap_or(""),
                );
                let package = format!("/etc/haproxy/errors/{code}.http");
                if path != package && PACKAGE_ERROR_CODES.contains(&code) {
                    line = replace_words(raw, &[(path, &package)]);
                    out.lines.push(format!(
                        "{}: errorfile {code} {path} -> {package} (your page is not in the run; the package's own)",
                        at(n)
                    ));
                } else if path != package {
                    line = format!("# stackproof: left out, the page is not in the run: {raw}");
                    out.lines.push(format!(
                        "{}: errorfile {code} {path} -> left out (your page is not in the run)",
                        at(n)
                    ));
                }
            }
            "chroot" if section == "global" => {
                let dir = words.get(1).copied().unwrap_or("");
                if dir != IMAGE_CHROOT {
                    line = replace_words(raw, &[(dir, IMAGE_CHROOT)]);
                    out.lines.push(format!(
                        "{}: chroot {dir} -> {IMAGE_CHROOT} (what the server's package creates)",
                        at(n)
                    ));
                }
            }
            "user" | "group" if section == "global" => {
                let who = words.get(1).copied().unwrap_or("");
                if !IMAGE_USERS.contains(&who) && who.parse::<u32>().is_err() {
                    line = replace_words(raw, &[(who, "haproxy")]);
                    out.lines.push(format!(
                        "{}: {first} {who} -> haproxy (no such {first} on the run's host)",
                        at(n)
                    ));
                }
            }
            "log" => {
                let target = words.get(1).copied().unwrap_or("");
                if target != "global"
                    && !target.starts_with('/')
                    && target != "stdout"
                    && target != "stderr"
                {
                    line = format!(
                        "# stackproof: log target left out (nothing listens there in the run): {raw}"
                    );
                    out.lines.push(format!(
                        "{}: log {target} -> left out (a remote log target is not contacted)",
                        at(n)
                    ));
                } else if target.starts_with('/') && section == "global" {
                    out.lines.push(format!("{}: log {target}: kept; the run's host has no syslog socket, so HAProxy's own log is not kept", at(n)));
                }
            }
            "stats" if words.get(1) == Some(&"socket") => {
                if words.get(2) == Some(&ADMIN_SOCKET) {
                    has_admin_socket = true;
                    if !words.contains(&"admin") {
                        out.lines.push(format!("{}: stats socket {ADMIN_SOCKET}: kept; stackproof also needs `level admin` on it", at(n)));
                        line = format!("{raw} level admin");
                    }
                }
            }
            "redirect" | "http-request" if words.contains(&"redirect") || first == "redirect" => {
                if !words.contains(&"code") {
                    out.warnings.push(format!(
                        "{}: `{}` has no `code`: HAProxy answers 302 (a temporary redirect), not 301",
                        at(n),
                        mask_secrets(code.trim())
                    ));
                }
            }
            "nameserver" | "peer" | "mailer" => {
                return Err(Error::InvalidFixture {
                    path: file.to_path_buf(),
                    detail: format!(
                        "line {n}: `{}` names an address the run cannot map to any of its hosts, and stackproof never contacts an address of yours",
                        mask_secrets(code.trim())
                    ),
                });
            }
            _ => {}
        }
        // A CA on a bind (client certificates) or a server line (verifying backends).
        if let Some(path) = words
            .iter()
            .position(|w| *w == "ca-file")
            .and_then(|i| words.get(i + 1))
            .filter(|p| **p != RUN_CA)
        {
            line = replace_words(&line, &[(path, RUN_CA)]);
            out.lines.push(format!(
                "{}: ca-file {path} -> {RUN_CA} (the run's CA)",
                at(n)
            ));
        }
        lines.push(line);
    }
    // Two frontends on one port: the kernel spreads connections between them.
    for (i, (port, sect, n)) in binds.iter().enumerate() {
        if let Some((_, other, m)) = binds[..i].iter().find(|(p, s, _)| p == port && s != sect) {
            out.warnings.push(format!(
                "{}: `{sect}` binds port {port}, as `{other}` does at line {m}: the kernel splits connections between them, so each gets some of the traffic",
                at(*n)
            ));
        }
    }
    if !has_admin_socket {
        // A second `global` section at the end (HAProxy merges them), so
        // every line of the user's file keeps its number in the server's messages.
        let add = format!("    stats socket {ADMIN_SOCKET} mode 660 level admin");
        lines.push("# stackproof: added for its own measuring".into());
        lines.push("global".into());
        lines.push(add.clone());
        out.additions.push(format!(
            "global: {} (stackproof reads HAProxy's own view of its servers there; it changes nothing HAProxy serves)",
            add.trim()
        ));
    }
    let mut mapped = lines.join("\n");
    mapped.push('\n');
    if let Some(d) = domain.filter(|d| d != run_domain) {
        let count = mapped.matches(d.as_str()).count();
        mapped = mapped.replace(d.as_str(), run_domain);
        out.lines.push(format!(
            "domain {d} -> {run_domain} (the run's DNS serves www.{run_domain} and the run's CA signed its certificate{})",
            if count > 0 {
                format!("; replaced in {count} place(s) of the file")
            } else {
                String::new()
            }
        ));
    }
    out.text = mapped;
    Ok(out)
}

/// The user's domain, from what names it: a letsencrypt or `<name>.pem`
/// certificate path, a redirect prefix, or a Host ACL.
pub fn find_domain(text: &str) -> Option<String> {
    let strip = |d: &str| -> Option<String> {
        let d = d
            .trim_matches(|c: char| c == '/' || c == '"' || c == '\'')
            .to_ascii_lowercase();
        let d = d.strip_prefix("www.").unwrap_or(&d).to_string();
        (d.contains('.')
            && d.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .then_some(d)
    };
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or("");
        let words: Vec<&str> = code.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if let Some(rest) = w.split("/live/").nth(1)
                && let Some(d) = rest.split('/').next().and_then(strip)
            {
                return Some(d);
            }
            if (*w == "crt" || *w == "ssl-cert")
                && let Some(p) = words.get(i + 1)
            {
                let file = p.rsplit('/').next().unwrap_or("");
                if let Some(d) = file.strip_suffix(".pem").and_then(strip) {
                    return Some(d);
                }
            }
            if *w == "prefix"
                && let Some(url) = words.get(i + 1)
                && let Some(d) = url
                    .split("://")
                    .nth(1)
                    .and_then(|h| h.split(['/', ':']).next())
                    .and_then(strip)
            {
                return Some(d);
            }
            if (w.starts_with("hdr(host)")
                || w.starts_with("hdr_dom(host)")
                || w.starts_with("hdr_end(host)")
                || w.starts_with("req.hdr(host)"))
                && let Some(d) = words[i + 1..]
                    .iter()
                    .find(|x| !x.starts_with('-'))
                    .and_then(|x| strip(x))
            {
                return Some(d);
            }
        }
    }
    None
}

/// Replaces whole whitespace-separated words of `line`, keeping its spacing.
fn replace_words(line: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(line.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let replaced = pairs
            .iter()
            .find(|(from, _)| !from.is_empty() && *from == word.as_str())
            .map(|(_, to)| *to);
        out.push_str(replaced.unwrap_or(word));
        word.clear();
    };
    for c in line.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
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
            all.contains(
                "server 4211-web-01 100.25.34.211:80 -> server-1 {{ server-1.private }}:80"
            ),
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
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/configs/haproxy/lb_debian_default.cfg");
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
            all.contains(
                "crt /etc/letsencrypt/live/www.4211.tech/haproxy.pem -> /etc/haproxy/www.pem"
            ),
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
        // No admin socket of its own: stackproof adds one, at the end, and says so.
        assert_eq!(m.additions.len(), 1);
        assert!(
            m.text
                .trim_end()
                .ends_with("stats socket /run/haproxy/admin.sock mode 660 level admin")
        );
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
}
