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
/// else found in the file; `run_domain` the run's. Each line keeps its
/// number; what the mapping changes, adds or warns of is one line of the
/// returned [`Mapped`] each.
pub fn map(
    file: &Path,
    text: &str,
    backends: &[Backend],
    domain: Option<&str>,
    run_domain: &str,
) -> Result<Mapped> {
    let mut m = Mapper::new(file, text, backends);
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        lines.push(m.line(i + 1, raw)?);
    }
    m.warn_of_shared_ports();
    m.warn_of_open_stats_pages();
    m.add_admin_socket(&mut lines);
    let domain = domain.map(str::to_string).or_else(|| find_domain(text));
    Ok(m.finish(lines, domain, run_domain))
}

/// One pass over a user's file: where it is (the section, its servers)
/// and what was done so far.
struct Mapper<'a> {
    file: &'a Path,
    /// The file's name, for `name:line` in every message.
    name: String,
    backends: &'a [Backend],
    renames: Renames,
    /// `frontend www`, `global`...: the section the current line is in.
    section: String,
    servers_in_section: usize,
    has_admin_socket: bool,
    /// The global `maxconn` and its line: HAProxy asks the kernel for about
    /// twice as many open files, and stops when it cannot have them.
    global_maxconn: Option<(usize, u64)>,
    /// (port, section, line) of every bind, for the "two frontends on one port" trap.
    binds: Vec<(String, String, usize)>,
    /// Sections serving HAProxy's stats page: (section, line), and those with `stats auth`.
    stats_pages: Vec<(String, usize)>,
    stats_auth: Vec<String>,
    out: Mapped,
}

impl<'a> Mapper<'a> {
    fn new(file: &'a Path, text: &str, backends: &'a [Backend]) -> Mapper<'a> {
        Mapper {
            file,
            name: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "haproxy.cfg".into()),
            backends,
            renames: section_renames(text),
            section: String::new(),
            servers_in_section: 0,
            has_admin_socket: false,
            global_maxconn: None,
            binds: Vec::new(),
            stats_pages: Vec::new(),
            stats_auth: Vec::new(),
            out: Mapped::default(),
        }
    }

    fn at(&self, n: usize) -> String {
        format!("{}:{n}", self.name)
    }

    fn refuse(&self, n: usize, detail: String) -> Error {
        Error::InvalidFixture {
            path: self.file.to_path_buf(),
            detail: format!("line {n}: {detail}"),
        }
    }

    /// Line `n` as the server gets it.
    // An arm's inner `if` is not its guard: a directive the arm takes and
    // leaves alone must not fall through to the arms after it.
    #[allow(clippy::collapsible_match)]
    fn line(&mut self, n: usize, raw: &str) -> Result<String> {
        let code = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = code.split_whitespace().collect();
        let Some(&first) = words.first() else {
            return Ok(raw.to_string());
        };
        if SECTIONS.contains(&first) {
            return Ok(self.section_line(n, raw, &words));
        }
        if let Some((_, instead)) = REMOVED.iter().find(|(d, _)| *d == first) {
            self.out.hints.push(format!(
                "{}: `{first}` was removed in HAProxy 2.1 (every later release refuses it); write `{instead}` instead",
                self.at(n)
            ));
        }
        let mut line = raw.to_string();
        if matches!(first, "default_backend" | "use_backend")
            && let Some(old) = words.get(1)
            && let Some((_, new, _)) = self.renames.1.iter().find(|(o, _, _)| o == old)
        {
            line = replace_words(&line, &[(old, new)]);
        }
        let in_global = self.section == "global";
        match first {
            "server"
                if self.section.starts_with("backend") || self.section.starts_with("listen") =>
            {
                line = self.server_line(n, raw, &words);
            }
            "server-template" => {
                return Err(self.refuse(
                    n,
                    "`server-template` resolves names the run cannot map; list the servers with `server` lines".into(),
                ));
            }
            "bind" => {
                let ciphers = words
                    .iter()
                    .position(|w| *w == "ciphers")
                    .and_then(|i| words.get(i + 1));
                self.cipher_list(n, ciphers);
                line = self.bind_line(n, line, &words)?;
            }
            "ssl-default-bind-ciphers" if in_global => self.cipher_list(n, words.get(1)),
            "maxconn" if in_global => {
                self.global_maxconn = words.get(1).and_then(|v| v.parse().ok()).map(|v| (n, v));
            }
            "ssl-dh-param-file" | "chroot" | "user" | "group" if in_global => {
                line = self.global_line(n, raw, &words);
            }
            "errorfile" => line = self.errorfile_line(n, raw, &words),
            "log" => line = self.log_line(n, raw, &words),
            "stats" if matches!(words.get(1), Some(&("enable" | "uri"))) => {
                if !self.stats_pages.iter().any(|(s, _)| *s == self.section) {
                    self.stats_pages.push((self.section.clone(), n));
                }
            }
            "stats" if words.get(1) == Some(&"auth") => self.stats_auth.push(self.section.clone()),
            "stats" if words.get(1) == Some(&"socket") => {
                if words.get(2) == Some(&ADMIN_SOCKET) {
                    self.has_admin_socket = true;
                    if !words.contains(&"admin") {
                        self.out.lines.push(format!("{}: stats socket {ADMIN_SOCKET}: kept; stackproof also needs `level admin` on it", self.at(n)));
                        line = format!("{raw} level admin");
                    }
                }
            }
            "redirect" | "http-request" if words.contains(&"redirect") || first == "redirect" => {
                if !words.contains(&"code") {
                    self.out.warnings.push(format!(
                        "{}: `{}` has no `code`: HAProxy answers 302 (a temporary redirect), not 301",
                        self.at(n),
                        mask_secrets(code.trim())
                    ));
                }
            }
            "nameserver" | "peer" | "mailer" => {
                return Err(self.refuse(
                    n,
                    format!(
                        "`{}` names an address the run cannot map to any of its hosts, and stackproof never contacts an address of yours",
                        mask_secrets(code.trim())
                    ),
                ));
            }
            _ => {}
        }
        Ok(self.ca_file(n, line, &words))
    }

    /// A section's first line: the design's name for the user's site
    /// frontend and web backend, and the 1.x address on a `listen` line.
    fn section_line(&mut self, n: usize, raw: &str, words: &[&str]) -> String {
        let first = words[0];
        self.section = format!("{first} {}", words.get(1).copied().unwrap_or(""))
            .trim()
            .to_string();
        self.servers_in_section = 0;
        let mut line = raw.to_string();
        let renames = match first {
            "frontend" => &self.renames.0,
            "backend" => &self.renames.1,
            _ => &Vec::new(),
        };
        if let Some(old) = words.get(1)
            && let Some((_, new, what)) = renames.iter().find(|(o, _, _)| o == old)
        {
            line = replace_words(&line, &[(old, new)]);
            self.out.renamed.push((new.to_string(), old.to_string()));
            self.out.lines.push(format!(
                "{}: {first} {old} -> {new} ({what}, by the name the design's monitoring and claims use)",
                self.at(n)
            ));
        }
        // HAProxy 1.x style: `listen www 0.0.0.0:80` binds on the section's
        // own line, which 2.x refuses: said beside the server's own refusal.
        if let Some(addr) = words.get(2).filter(|a| a.contains(':')) {
            self.out.hints.push(format!(
                "{}: an address on the `{first}` line is HAProxy 1.x syntax that HAProxy 2.0 and later refuse; write `{first} {}` and, on the next line, `bind {addr}`",
                self.at(n),
                words.get(1).copied().unwrap_or("")
            ));
        }
        line
    }

    /// A backend's `server`: onto the design's next backend, renamed to
    /// its host; one on loopback stays the load balancer's own.
    fn server_line(&mut self, n: usize, raw: &str, words: &[&str]) -> String {
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
            self.out.lines.push(format!(
                "{}: server {user_name} {addr} -> kept (the load balancer itself, not one of the design's backends)",
                self.at(n)
            ));
            return raw.to_string();
        }
        let at = self.at(n);
        let Some(b) = self.backends.get(self.servers_in_section) else {
            self.servers_in_section += 1;
            self.out.lines.push(format!(
                "{at}: server {user_name} {addr} -> not mapped (the design has {} backend(s)); left out",
                self.backends.len()
            ));
            return format!(
                "# stackproof: not mapped, the design has {} backend(s): {raw}",
                self.backends.len()
            );
        };
        self.servers_in_section += 1;
        let target = match &port {
            Some(p) => format!("{}:{p}", b.address),
            None => b.address.clone(),
        };
        if !bare.is_empty() && !super::is_local(bare) {
            self.out.learned.push((
                bare.to_string(),
                super::Known {
                    placeholder: b.address.clone(),
                    what: b.host.clone(),
                },
            ));
        }
        // `check` on a server with no port and no `port` for its checks:
        // HAProxy refuses the file ("has neither service port nor check
        // port"); the fix is one word.
        let checked_without_port =
            port.is_none() && words.contains(&"check") && !words.contains(&"port");
        self.out.lines.push(format!(
            "{at}: server {user_name} {addr} -> {} {target}{}",
            b.host,
            if port.is_none() {
                " (no port: HAProxy connects on the port each client came in on)"
            } else {
                ""
            }
        ));
        if checked_without_port {
            self.out.hints.push(format!(
                "{at}: server {user_name} has `check` but no port, which HAProxy refuses: add :80 to its address ({addr}:80)"
            ));
        } else if port.is_none() {
            self.out.warnings.push(format!(
                "{at}: server {user_name} has no port: HAProxy connects to it on the port each client came in on (443 for HTTPS), where the web server may not listen"
            ));
        }
        replace_words(raw, &[(user_name, &b.host), (addr, &target)])
    }

    /// A `bind`: a specific address onto the container's, a certificate
    /// onto the run's; every port remembered for the shared-port trap.
    fn bind_line(&mut self, n: usize, mut line: String, words: &[&str]) -> Result<String> {
        let addr = words.get(1).copied().unwrap_or("");
        let (host, port) = addr.rsplit_once(':').unwrap_or(("", addr));
        if !host.is_empty() && !matches!(host, "*" | "0.0.0.0" | "::" | "[::]") {
            line = replace_words(&line, &[(addr, &format!("*:{port}"))]);
            self.out.lines.push(format!(
                "{}: bind {addr} -> *:{port} (the container's own addresses)",
                self.at(n)
            ));
        }
        self.binds.push((port.to_string(), self.section.clone(), n));
        if words.contains(&"ssl") && port != "443" {
            self.out.warnings.push(format!(
                "{}: TLS is bound on port {port}, not 443: a browser asking for https://www.<your domain>/ knocks on 443",
                self.at(n)
            ));
        }
        if let Some(pos) = words.iter().position(|w| *w == "crt")
            && let Some(path) = words.get(pos + 1)
        {
            line = replace_words(&line, &[(path, RUN_PEM)]);
            self.out.lines.push(format!(
                "{}: crt {path} -> {RUN_PEM} (the run's certificate and key)",
                self.at(n)
            ));
        }
        if words.contains(&"crt-list") {
            return Err(self.refuse(n, "`crt-list` is not mapped yet; use `crt <file>`".into()));
        }
        Ok(line)
    }

    /// The global section's paths and users onto what the run's host has.
    fn global_line(&mut self, n: usize, raw: &str, words: &[&str]) -> String {
        let (first, value) = (words[0], words.get(1).copied().unwrap_or(""));
        let (to, why) = match first {
            "ssl-dh-param-file" if value != RUN_DH => {
                (RUN_DH, "RFC 7919's ffdhe2048 group, the run's own file")
            }
            "chroot" if value != IMAGE_CHROOT => {
                (IMAGE_CHROOT, "what the server's package creates")
            }
            "user" | "group" if !IMAGE_USERS.contains(&value) && value.parse::<u32>().is_err() => {
                ("haproxy", "")
            }
            _ => return raw.to_string(),
        };
        let why = match why {
            "" => format!("no such {first} on the run's host"),
            why => why.to_string(),
        };
        self.out
            .lines
            .push(format!("{}: {first} {value} -> {to} ({why})", self.at(n)));
        replace_words(raw, &[(value, to)])
    }

    /// An `errorfile`: the package's page for its code, or left out.
    fn errorfile_line(&mut self, n: usize, raw: &str, words: &[&str]) -> String {
        let (code, path) = (
            words.get(1).copied().unwrap_or(""),
            words.get(2).copied().unwrap_or(""),
        );
        let package = format!("/etc/haproxy/errors/{code}.http");
        if path == package {
            raw.to_string()
        } else if PACKAGE_ERROR_CODES.contains(&code) {
            self.out.lines.push(format!(
                "{}: errorfile {code} {path} -> {package} (your page is not in the run; the package's own)",
                self.at(n)
            ));
            replace_words(raw, &[(path, &package)])
        } else {
            self.out.lines.push(format!(
                "{}: errorfile {code} {path} -> left out (your page is not in the run)",
                self.at(n)
            ));
            format!("# stackproof: left out, the page is not in the run: {raw}")
        }
    }

    /// A `log` target: a remote one left out (never contacted).
    fn log_line(&mut self, n: usize, raw: &str, words: &[&str]) -> String {
        let target = words.get(1).copied().unwrap_or("");
        if target != "global"
            && !target.starts_with('/')
            && target != "stdout"
            && target != "stderr"
        {
            self.out.lines.push(format!(
                "{}: log {target} -> left out (a remote log target is not contacted)",
                self.at(n)
            ));
            return format!(
                "# stackproof: log target left out (nothing listens there in the run): {raw}"
            );
        }
        if target.starts_with('/') && self.section == "global" {
            self.out.lines.push(format!("{}: log {target}: kept; the run's host has no syslog socket, so HAProxy's own log is not kept", self.at(n)));
        }
        raw.to_string()
    }

    /// A CA on a bind (client certificates) or a server line (verifying backends).
    fn ca_file(&mut self, n: usize, line: String, words: &[&str]) -> String {
        let Some(path) = words
            .iter()
            .position(|w| *w == "ca-file")
            .and_then(|i| words.get(i + 1))
            .filter(|p| **p != RUN_CA)
        else {
            return line;
        };
        self.out.lines.push(format!(
            "{}: ca-file {path} -> {RUN_CA} (the run's CA)",
            self.at(n)
        ));
        replace_words(&line, &[(path, RUN_CA)])
    }

    /// A stats page anyone who reaches it can read (and, with `stats admin`,
    /// act on): no `stats auth` in its section or the defaults.
    fn warn_of_open_stats_pages(&mut self) {
        let defaults_auth = self.stats_auth.iter().any(|s| s.starts_with("defaults"));
        for (section, n) in &self.stats_pages {
            if !defaults_auth && !self.stats_auth.contains(section) {
                self.out.warnings.push(format!(
                    "{}: `{section}` serves HAProxy's stats page with no `stats auth`: whoever reaches it reads every backend's state and address",
                    self.at(*n)
                ));
            }
        }
    }

    /// Two frontends on one port: the kernel spreads connections between them.
    fn warn_of_shared_ports(&mut self) {
        for (i, (port, sect, n)) in self.binds.iter().enumerate() {
            if let Some((_, other, m)) = self.binds[..i]
                .iter()
                .find(|(p, s, _)| p == port && s != sect)
            {
                self.out.warnings.push(format!(
                    "{}: `{sect}` binds port {port}, as `{other}` does at line {m}: the kernel splits connections between them, so each gets some of the traffic",
                    self.at(*n)
                ));
            }
        }
    }

    /// A TLS 1.2 cipher list that only an RSA certificate can serve
    /// (`kEECDH+aRSA+AES:kRSA+AES:RC4-SHA`): the user's certificate is RSA,
    /// or their TLS 1.2 would fail, so the run's CA issues an RSA one too.
    fn cipher_list(&mut self, n: usize, list: Option<&&str>) {
        let Some(list) = list else { return };
        if !rsa_only(list)
            || self
                .out
                .files
                .iter()
                .any(|(f, _)| f == crate::spec::CERTIFICATE_KEY_FILE)
        {
            return;
        }
        self.out.files.push((
            crate::spec::CERTIFICATE_KEY_FILE.into(),
            "rsa-2048\n".into(),
        ));
        self.out.lines.push(format!(
            "{}: TLS 1.2 suites authenticated by RSA only -> the run's certificate has an RSA key, as yours must (an ECDSA one would serve TLS 1.3 alone)",
            self.at(n)
        ));
    }

    /// The admin socket stackproof reads HAProxy's own view from, when the
    /// file has none: in a second `global` section at the end (HAProxy
    /// merges them), so every line of the user's file keeps its number.
    ///
    /// With a global `maxconn`, also `no strict-limits`: HAProxy asks for
    /// about twice as many open files, and the run's containers may allow
    /// fewer than the user's server (here 20000, where a systemd host allows
    /// 524288), so it starts with what it gets instead of stopping ("Cannot
    /// raise FD limit"); the claims' load is far below either.
    fn add_admin_socket(&mut self, lines: &mut Vec<String>) {
        let mut adds = Vec::new();
        if !self.has_admin_socket {
            adds.push((
                format!("    stats socket {ADMIN_SOCKET} mode 660 level admin"),
                "stackproof reads HAProxy's own view of its servers there; it changes nothing HAProxy serves".to_string(),
            ));
        }
        if let Some((n, maxconn)) = self.global_maxconn {
            adds.push((
                "    no strict-limits".into(),
                format!(
                    "{}: maxconn {maxconn} makes HAProxy ask for about {} open files, which the run's containers may not allow as your server does; it starts with what it gets instead of stopping, far above what the claims send",
                    self.at(n),
                    2 * maxconn
                ),
            ));
        }
        if adds.is_empty() {
            return;
        }
        lines.push("# stackproof: added for its own measuring".into());
        lines.push("global".into());
        for (add, why) in adds {
            lines.push(add.clone());
            self.out
                .additions
                .push(format!("global: {} ({why})", add.trim()));
        }
    }

    /// The mapped text, with the user's domain onto the run's.
    fn finish(mut self, lines: Vec<String>, domain: Option<String>, run_domain: &str) -> Mapped {
        let mut mapped = lines.join("\n");
        mapped.push('\n');
        if let Some(d) = domain.filter(|d| d != run_domain) {
            let count = mapped.matches(d.as_str()).count();
            mapped = mapped.replace(d.as_str(), run_domain);
            self.out.lines.push(format!(
                "domain {d} -> {run_domain} (the run's DNS serves www.{run_domain} and the run's CA signed its certificate{})",
                if count > 0 {
                    format!("; replaced in {count} place(s) of the file")
                } else {
                    String::new()
                }
            ));
        }
        self.out.text = mapped;
        self.out
    }
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
mod tests;

/// Whether an OpenSSL cipher list selects TLS 1.2 suites that only an RSA
/// certificate can serve: some entry names RSA authentication and none
/// could use ECDSA (an entry naming ECDSA, or a generic one such as `HIGH`
/// or `ECDH+AESGCM` that leaves the authentication open).
fn rsa_only(list: &str) -> bool {
    let mut rsa = false;
    for entry in list.split([':', ',', ' ']).map(str::trim) {
        if entry.is_empty() || entry.starts_with(['!', '-', '+']) || entry.starts_with('@') {
            continue;
        }
        let upper = entry.to_ascii_uppercase();
        if upper.contains("ECDSA") {
            return false;
        }
        let parts: Vec<&str> = upper.split('+').collect();
        let names_rsa = parts.iter().any(|p| matches!(*p, "ARSA" | "KRSA" | "RSA"))
            // A named suite (`ECDHE-RSA-AES128-GCM-SHA256`, `RC4-SHA`,
            // `AES128-SHA`): without ECDSA in its name, RSA authenticates it.
            || (parts.len() == 1 && upper.contains('-'));
        if !names_rsa {
            // Generic (`HIGH`, `AESGCM`, `ECDH+AES`): ECDSA may serve it.
            return false;
        }
        rsa = true;
    }
    rsa
}
