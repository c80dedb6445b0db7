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
    let name = file_label(file);
    let at = |n: usize| format!("{name}:{n}");
    let mut out = Mapped::default();
    let first_host = target.running.first().copied().unwrap_or("");
    let net = target.inner_network(first_host);
    // Where the design's web server reaches PHP-FPM: on the same host, or another.
    let remote_web = target
        .design
        .spec
        .vars
        .get("php_fpm")
        .is_some_and(|v| v.trim() != "127.0.0.1");
    let web_hosts: Vec<&str> = target
        .design
        .spec
        .hosts
        .iter()
        .filter(|h| h.services.iter().any(|s| s == "nginx" || s == "apache"))
        .map(|h| h.name.as_str())
        .collect();
    let mut has_access_log = false;
    let mut has_pool = false;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let code = raw.split(';').next().unwrap_or("").trim();
        let mut line = raw.to_string();
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
            lines.push(line);
            continue;
        };
        let (key, value) = (key.trim(), value.trim().trim_matches('"'));
        match key {
            "listen" => {
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
                        format!("{{{{ self.{net} }}}}:{RUN_PORT}"),
                        "the host's own address",
                    ))
                };
                if let Some((to, why)) = to {
                    line = format!("listen = {to}");
                    out.lines
                        .push(format!("{}: listen = {value} -> {to} ({why})", at(n)));
                }
                // Reached only from this host: a socket, or a loopback address.
                let local = value.starts_with('/')
                    || matches!(addr, "127.0.0.1" | "localhost" | "::1" | "[::1]");
                if local && remote_web {
                    out.warnings.push(format!(
                        "{}: `listen = {value}` is reached only from this host, and the design's web server ({}) is on another: its PHP pages fail",
                        at(n),
                        web_hosts.join(", ")
                    ));
                }
            }
            "listen.allowed_clients" => {
                let mut mapped = Vec::new();
                let mut web = web_hosts.iter();
                for client in value.split(',').map(str::trim) {
                    if is_local(client) || !is_ipv4(client) {
                        mapped.push(client.to_string());
                    } else if let Some(k) = target.lookup(client) {
                        mapped.push(k.placeholder.clone());
                        out.lines.push(format!(
                            "{}: allowed client {client} -> {} ({})",
                            at(n),
                            k.placeholder,
                            k.what
                        ));
                    } else if let Some(w) = web.next() {
                        let to = target.address_of(w);
                        out.lines.push(format!(
                            "{}: allowed client {client} -> {to} ({w}, the design's web server)",
                            at(n)
                        ));
                        mapped.push(to);
                    } else {
                        return Err(Error::InvalidFixture {
                            path: file.to_path_buf(),
                            detail: format!(
                                "line {n}: allowed client {client} is none of the design's web servers ({}), and stackproof maps each to one",
                                web_hosts.join(", ")
                            ),
                        });
                    }
                }
                line = format!("listen.allowed_clients = {}", mapped.join(","));
            }
            "user" | "group" | "listen.owner" | "listen.group" if value != "www-data" => {
                line = format!("{key} = www-data");
                out.lines.push(format!(
                    "{}: {key} = {value} -> www-data (the run's web user)",
                    at(n)
                ));
            }
            "access.log" => {
                has_access_log = true;
                if value != RUN_ACCESS_LOG {
                    line = format!("access.log = {RUN_ACCESS_LOG}");
                    out.lines.push(format!(
                        "{}: access.log = {value} -> {RUN_ACCESS_LOG} (where the claims count requests)",
                        at(n)
                    ));
                }
            }
            _ => {}
        }
        lines.push(line);
    }
    if !has_pool {
        return Err(Error::InvalidFixture {
            path: file.to_path_buf(),
            detail: "no pool section (`[www]`): PHP-FPM would serve nothing from this file".into(),
        });
    }
    if !has_access_log {
        lines.push("; stackproof: one line per request, which the claims count".into());
        lines.push(format!("access.log = {RUN_ACCESS_LOG}"));
        out.additions
            .push(format!("access.log = {RUN_ACCESS_LOG} at the end (the claims count requests there; it changes nothing PHP-FPM serves)"));
    }
    out.text = lines.join("\n") + "\n";
    Ok(out)
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
