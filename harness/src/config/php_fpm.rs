//! A user's PHP-FPM pool file (`/etc/php/<version>/fpm/pool.d/www.conf`),
//! exactly as it is on their server, mapped onto the design's app hosts.
//! `listen` keeps its meaning: a socket or a loopback address stays local
//! (reached only by a web server on the same host), an address of the
//! user's server becomes the host's own; the port is the design's (9000,
//! where its web server connects). `listen.allowed_clients` names the
//! design's web servers; a user that does not exist becomes `www-data`.
//! The access log the claims count is kept where they count it.

use std::path::Path;

use super::{Mapped, Target, file_label, is_ipv4, is_local};
use crate::error::{Error, Result};

/// Where the claims count the requests PHP-FPM served.
const RUN_ACCESS_LOG: &str = "/var/log/php-fpm/access.log";

/// The port the design's web servers connect to.
const RUN_PORT: &str = "9000";

/// Maps `text` (from `file`).
pub fn map(file: &Path, text: &str, target: &Target) -> Result<Mapped> {
    let mut pool = Pool::new(file, target);
    let mut has_access_log = false;
    let mut has_pool = false;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split(';').next().unwrap_or("").trim();
        if code == "[global]" {
            return Err(Error::InvalidFixture {
                path: file.to_path_buf(),
                detail: format!(
                    "line {n}: this is php-fpm.conf (its [global] section); give the pool file (pool.d/www.conf), which is what is mapped"
                ),
            });
        }
        if code.starts_with('[') {
            has_pool = true;
        }
        let Some((key, value)) = code.split_once('=') else {
            lines.push(raw.to_string());
            continue;
        };
        let (key, value) = (key.trim(), value.trim().trim_matches('"'));
        let at = pool.at(n);
        let mapped = match key {
            "listen" => pool.listen(n, value),
            "listen.allowed_clients" => Some(pool.allowed_clients(n, value)?),
            "user" | "group" | "listen.owner" | "listen.group" if value != "www-data" => {
                pool.out.lines.push(format!(
                    "{at}: {key} = {value} -> www-data (the run's web user)"
                ));
                Some(format!("{key} = www-data"))
            }
            "access.log" => {
                has_access_log = true;
                (value != RUN_ACCESS_LOG).then(|| {
                    pool.out.lines.push(format!(
                        "{at}: access.log = {value} -> {RUN_ACCESS_LOG} (where the claims count requests)"
                    ));
                    format!("access.log = {RUN_ACCESS_LOG}")
                })
            }
            _ => None,
        };
        lines.push(mapped.unwrap_or_else(|| raw.to_string()));
    }
    if !has_pool {
        return Err(Error::InvalidFixture {
            path: file.to_path_buf(),
            detail: "no pool section (`[www]`): PHP-FPM would serve nothing from this file".into(),
        });
    }
    let mut out = pool.out;
    if !has_access_log {
        lines.push("; stackproof: one line per request, which the claims count".into());
        lines.push(format!("access.log = {RUN_ACCESS_LOG}"));
        out.additions
            .push(format!("access.log = {RUN_ACCESS_LOG} at the end (the claims count requests there; it changes nothing PHP-FPM serves)"));
    }
    out.text = lines.join("\n") + "\n";
    Ok(out)
}

/// A pool file being mapped, and where the design's web servers are.
struct Pool<'a> {
    file: &'a Path,
    name: String,
    target: &'a Target<'a>,
    /// The network the app hosts' peers reach them on.
    net: String,
    /// The design's web server reaches PHP-FPM on another host.
    remote_web: bool,
    /// The design's hosts running a web server, in order.
    web_hosts: Vec<&'a str>,
    out: Mapped,
}

impl<'a> Pool<'a> {
    fn new(file: &'a Path, target: &'a Target<'a>) -> Self {
        let first_host = target.running.first().copied().unwrap_or("");
        // Where the design's web server reaches PHP-FPM: on the same host, or another.
        let remote_web = target
            .design
            .spec
            .vars
            .get("php_fpm")
            .is_some_and(|v| v.trim() != "127.0.0.1");
        let web_hosts = target
            .design
            .spec
            .hosts
            .iter()
            .filter(|h| h.services.iter().any(|s| s == "nginx" || s == "apache"))
            .map(|h| h.name.as_str())
            .collect();
        Pool {
            file,
            name: file_label(file),
            target,
            net: target.inner_network(first_host),
            remote_web,
            web_hosts,
            out: Mapped::default(),
        }
    }

    fn at(&self, n: usize) -> String {
        format!("{}:{n}", self.name)
    }

    /// `listen = VALUE`: a socket or loopback stays local, any other
    /// address becomes the host's own, on the design's port. Returns the
    /// line to write when it changes.
    fn listen(&mut self, n: usize, value: &str) -> Option<String> {
        let at = self.at(n);
        let (addr, port) = match value.rsplit_once(':') {
            Some((a, p)) => (a, p),
            None if value.parse::<u16>().is_ok() => ("", value),
            None => (value, ""),
        };
        let to = if value.starts_with('/') {
            Some((
                format!("127.0.0.1:{RUN_PORT}"),
                "a socket is local: only a web server on this host reaches it",
            ))
        } else if addr.is_empty() || addr == "0.0.0.0" || addr == "[::]" {
            (port != RUN_PORT).then(|| {
                (
                    format!("0.0.0.0:{RUN_PORT}"),
                    "every address, on the port the design's web server connects to",
                )
            })
        } else if is_local(addr) {
            (value != format!("127.0.0.1:{RUN_PORT}"))
                .then(|| (format!("127.0.0.1:{RUN_PORT}"), "loopback stays loopback"))
        } else {
            Some((
                format!("{{{{ self.{} }}}}:{RUN_PORT}", self.net),
                "the host's own address",
            ))
        };
        // Reached only from this host: a socket, or a loopback address.
        let local =
            value.starts_with('/') || matches!(addr, "127.0.0.1" | "localhost" | "::1" | "[::1]");
        let line = to.map(|(to, why)| {
            self.out
                .lines
                .push(format!("{at}: listen = {value} -> {to} ({why})"));
            format!("listen = {to}")
        });
        if local && self.remote_web {
            self.out.warnings.push(format!(
                "{at}: `listen = {value}` is reached only from this host, and the design's web server ({}) is on another: its PHP pages fail",
                self.web_hosts.join(", ")
            ));
        }
        line
    }

    /// `listen.allowed_clients = A,B`: each address the design's web
    /// server it stands for (another file's meaning first, then in order).
    fn allowed_clients(&mut self, n: usize, value: &str) -> Result<String> {
        let at = self.at(n);
        let mut mapped = Vec::new();
        let mut web = self.web_hosts.iter();
        for client in value.split(',').map(str::trim) {
            if is_local(client) || !is_ipv4(client) {
                mapped.push(client.to_string());
            } else if let Some(k) = self.target.lookup(client) {
                self.out.lines.push(format!(
                    "{at}: allowed client {client} -> {} ({})",
                    k.placeholder, k.what
                ));
                mapped.push(k.placeholder);
            } else if let Some(w) = web.next() {
                let to = self.target.address_of(w);
                self.out.lines.push(format!(
                    "{at}: allowed client {client} -> {to} ({w}, the design's web server)"
                ));
                mapped.push(to);
            } else {
                return Err(Error::InvalidFixture {
                    path: self.file.to_path_buf(),
                    detail: format!(
                        "line {n}: allowed client {client} is none of the design's web servers ({}), and stackproof maps each to one",
                        self.web_hosts.join(", ")
                    ),
                });
            }
        }
        Ok(format!("listen.allowed_clients = {}", mapped.join(",")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AddressBook;
    use crate::design::Design;

    fn mapped(design: &str, text: &str) -> Mapped {
        let design = Design::load(design).unwrap();
        let book = AddressBook::new();
        let running: Vec<&str> = design
            .spec
            .hosts
            .iter()
            .filter(|h| h.services.iter().any(|s| s == "php-fpm"))
            .map(|h| h.name.as_str())
            .collect();
        let target = Target {
            design: &design,
            host: None,
            running,
            domain: None,
            run_domain: "foobar.com",
            book: &book,
        };
        map(Path::new("www.conf"), text, &target).unwrap()
    }

    #[test]
    fn a_debian_pool_keeps_its_meaning() {
        let debian = "[www]\nuser = www-data\ngroup = www-data\nlisten = /run/php/php7.4-fpm.sock\nlisten.owner = www-data\npm = dynamic\n";
        let m = mapped("simple_web_nginx", debian);
        let all = m.lines.join("\n");
        assert!(
            all.contains("www.conf:4: listen = /run/php/php7.4-fpm.sock -> 127.0.0.1:9000"),
            "{all}"
        );
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.additions.len(), 1);
        // The same file on split tiers: the web server on web-1 cannot reach it.
        let m = mapped("scale_up", debian);
        assert!(m.warnings[0].contains("web-1"), "{:?}", m.warnings);
        let m = mapped(
            "scale_up",
            "[app]\nuser = nginx\nlisten = 10.0.2.7:9001\nlisten.allowed_clients = 10.0.2.5\naccess.log = /var/log/app.access.log\n",
        );
        let all = m.lines.join("\n");
        assert!(
            all.contains("listen = 10.0.2.7:9001 -> {{ self.private }}:9000"),
            "{all}"
        );
        assert!(
            all.contains("allowed client 10.0.2.5 -> {{ web-1.private }} (web-1"),
            "{all}"
        );
        assert!(all.contains("user = nginx -> www-data"), "{all}");
        assert!(m.additions.is_empty() && m.warnings.is_empty());
    }
}
