//! Users' own configuration files, as they are on their servers, checked
//! by a design: `--config [HOST:]KIND=PATH`. Each file is mapped onto the
//! run (addresses, certificate paths, domain, what cannot work in a
//! container), every mapping printed, and laid over the design's files for
//! the hosts that run that software. No address of the user's file is ever
//! contacted. HAProxy files and Nginx site files are mapped today; the
//! other kinds name themselves and stop with a clear message.

pub mod haproxy;
pub mod nginx;
pub mod script;

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
}

/// The server software `--config` takes, and the services of the library that run it.
const KINDS: &[(&str, &[&str])] = &[
    ("haproxy", &["haproxy", "haproxy-tls"]),
    ("nginx", &["nginx"]),
    ("apache", &["apache"]),
    ("keepalived", &["keepalived"]),
    (
        "mariadb",
        &["mariadb", "mariadb-primary", "mariadb-replica"],
    ),
    ("php-fpm", &["php-fpm"]),
    ("prometheus", &["prometheus"]),
    ("iptables", &["firewall-lb", "firewall-server"]),
];

/// One `--config [HOST:]KIND=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigArg {
    /// One host of the design, when the hosts need different files.
    pub host: Option<String>,
    /// The server software (`haproxy`).
    pub kind: String,
    /// The user's file.
    pub path: PathBuf,
    /// How to name it when it is not the user's own file (one an install script wrote).
    pub origin: Option<String>,
}

impl std::str::FromStr for ConfigArg {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (left, path) = s.split_once('=').ok_or_else(|| {
            format!("`{s}`: write KIND=PATH or HOST:KIND=PATH, e.g. haproxy=./haproxy.cfg")
        })?;
        let (host, kind) = match left.split_once(':') {
            Some((h, k)) => (Some(h.to_string()), k.to_string()),
            None => (None, left.to_string()),
        };
        if !KINDS.iter().any(|(k, _)| *k == kind) {
            return Err(format!(
                "`{kind}` is not a server stackproof maps; it maps: {}",
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(ConfigArg {
            host,
            kind,
            path: PathBuf::from(path),
            origin: None,
        })
    }
}

/// Masks secrets in a line of a user's file: passwords, `auth` pairs, keys.
pub fn mask_secrets(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let mut out = Vec::with_capacity(words.len());
    let mut hide_next = false;
    for w in words {
        if hide_next && !w.is_empty() {
            out.push("******".to_string());
            hide_next = false;
            continue;
        }
        let lower = w.to_ascii_lowercase();
        if [
            "password",
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
}

impl Applied {
    /// `message` with the mapped files' paths replaced by the user's own
    /// (a server's refusal then names the file the user knows).
    pub fn in_users_terms(&self, message: &str) -> String {
        let mut m = message.to_string();
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

/// Maps each user file onto `design` and writes the results to a fresh
/// folder under `scratch`, laid out like the fixtures (the service's own
/// config file, replaced for every host that runs that service).
pub fn apply(
    design: &Design,
    configs: &[ConfigArg],
    domain: Option<&str>,
    scratch: &Path,
) -> Result<Applied> {
    let mut applied = Applied::default();
    if configs.is_empty() {
        return Ok(applied);
    }
    std::fs::create_dir_all(scratch)
        .map_err(Error::io(format!("create `{}`", scratch.display())))?;
    for c in configs {
        let services = KINDS
            .iter()
            .find(|(k, _)| *k == c.kind)
            .map(|(_, s)| *s)
            .unwrap_or(&[]);
        let running: Vec<(&str, &str)> = design
            .spec
            .hosts
            .iter()
            .flat_map(|h| {
                h.services
                    .iter()
                    .filter(|s| services.contains(&s.as_str()))
                    .map(move |s| (h.name.as_str(), s.as_str()))
            })
            .collect();
        let Some(&(_, service)) = running.first() else {
            return Err(Error::InvalidFixture {
                path: c.path.clone(),
                detail: format!(
                    "no host of {} runs {} ({}), so there is nowhere to put this file",
                    design.name,
                    c.kind,
                    services.join(" or ")
                ),
            });
        };
        if let Some(h) = &c.host
            && !running.iter().any(|(name, _)| name == h)
        {
            return Err(Error::InvalidFixture {
                path: c.path.clone(),
                detail: format!(
                    "host `{h}` does not run {}; these do: {}",
                    c.kind,
                    running
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if c.host.is_some() && running.len() > 1 {
            return Err(Error::InvalidFixture {
                path: c.path.clone(),
                detail: format!(
                    "a file for one host of several ({}) is not supported yet: give one file for all of them (KIND=PATH)",
                    running
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if c.kind != "haproxy" && c.kind != "nginx" {
            return Err(Error::InvalidFixture {
                path: c.path.clone(),
                detail: format!(
                    "mapping a user's {} file onto the run is not implemented yet (HAProxy and Nginx site files are); lay a file written for the run over the fixtures with --fixtures instead",
                    c.kind
                ),
            });
        }
        let text = std::fs::read_to_string(&c.path).map_err(|source| Error::Fixture {
            path: c.path.clone(),
            source,
        })?;
        let (mapped, rel) = if c.kind == "nginx" {
            // The site file: the fixture installed in sites-enabled.
            (
                nginx::map(&c.path, &text, domain, crate::stack::ZONE)?,
                format!("services/{service}/site.conf"),
            )
        } else {
            // The fixture its service.toml installs at HAProxy's path.
            (
                haproxy::map(
                    &c.path,
                    &text,
                    &backends(design),
                    domain,
                    crate::stack::ZONE,
                )?,
                format!("services/{service}/haproxy.cfg"),
            )
        };
        let target = scratch.join(&rel);
        std::fs::create_dir_all(target.parent().expect("a file in a folder"))
            .map_err(Error::io(format!("create `{}`", target.display())))?;
        std::fs::write(&target, &mapped.text)
            .map_err(Error::io(format!("write `{}`", target.display())))?;
        let hosts: Vec<&str> = running.iter().map(|(h, _)| *h).collect();
        let mut section = vec![format!(
            "{} ({}) -> {service} on {}",
            c.origin
                .clone()
                .unwrap_or_else(|| c.path.display().to_string()),
            c.kind,
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
        applied.report.push(section.join("\n"));
        applied.hints.extend(mapped.hints);
        applied.sources.push((target.clone(), c.path.clone()));
        applied.overlay = Some(scratch.to_path_buf());
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_args_parse_and_name_what_exists() {
        let c: ConfigArg = "haproxy=./lb/haproxy.cfg".parse().unwrap();
        assert_eq!((c.host, c.kind.as_str()), (None, "haproxy"));
        let c: ConfigArg = "lb-2:keepalived=k.conf".parse().unwrap();
        assert_eq!(c.host.as_deref(), Some("lb-2"));
        let e = "haprox=x".parse::<ConfigArg>().unwrap_err();
        assert!(e.contains("haproxy, nginx"), "{e}");
        assert!(
            "haproxy"
                .parse::<ConfigArg>()
                .unwrap_err()
                .contains("KIND=PATH")
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
        assert_eq!(
            mask_secrets("server web-01 1.2.3.4:80 check"),
            "server web-01 1.2.3.4:80 check"
        );
    }
}
