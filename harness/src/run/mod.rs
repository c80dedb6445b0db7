//! One road from a user's inputs to verdicts, for every front end (`check`,
//! `check --stacks`, `grade`, `mutants`, `bench`, the suites).
//!
//! A [`Plan`] names what to run: a design and everything laid over it (a
//! folder of the user's files, a mutant, the user's own config files and
//! install scripts) and which claims. [`Plan::prepare`] reads and checks it
//! all before any container starts, into a [`Prepared`] run. A [`Runner`]
//! runs it on a [`Schedule`] (in turn, on several stacks, repeated, or
//! claim by claim from a pool for libtest) and reports as it goes through
//! [`Event`]s, so a front end only prints.

use std::path::PathBuf;

use crate::claim::{Claim, Outcome};
use crate::config::{AddressArg, Applied, ConfigArg};
use crate::design::Design;
use crate::error::{Error, Result};
use crate::kinds::Kinds;
use crate::stack::Stack;
use crate::tempdir::TempDir;

mod runner;
mod stacks;
mod variant;

/// One claim on `stack`, recording on `rec`: a claim measured on a
/// variant gets the variant's stack started beside `stack` (see
/// variant.rs); any other runs on `stack` itself.
async fn one_claim(stack: &Stack, c: &Claim, rec: &crate::recorder::Recorder) -> Outcome {
    match &c.variant {
        Some(v) if c.skip.is_none() => variant::on_variant(stack, c, v, rec).await,
        _ => crate::claim::run_recorded(stack, c, rec).await,
    }
}
pub use runner::{GradedOn, MutantPath, Ran, Runner, Schedule, UsersRun};

/// What to run, before anything is read: built with the `with_*` methods.
#[derive(Clone)]
pub struct Plan {
    design: String,
    kinds: Kinds,
    extra_claims: Vec<Claim>,
    fixtures: Option<PathBuf>,
    mutant: Option<String>,
    configs: Vec<ConfigArg>,
    scripts: Vec<ConfigArg>,
    domain: Option<String>,
    addresses: Vec<AddressArg>,
    only: Vec<String>,
    platform: Option<String>,
}

impl Plan {
    /// Design `design` (a built-in name or a folder), all its claims, nothing laid over it.
    pub fn new(design: impl Into<String>) -> Plan {
        Plan {
            design: design.into(),
            kinds: Kinds::builtin(),
            extra_claims: Vec::new(),
            fixtures: None,
            mutant: None,
            configs: Vec::new(),
            scripts: Vec::new(),
            domain: None,
            addresses: Vec::new(),
            only: Vec::new(),
            platform: None,
        }
    }

    /// The check kinds its claims may use (the library's plus a crate's own).
    pub fn with_kinds(mut self, kinds: Kinds) -> Plan {
        self.kinds = kinds;
        self
    }

    /// Claims checked by Rust code, after the design's own.
    pub fn with_claims(mut self, claims: Vec<Claim>) -> Plan {
        self.extra_claims.extend(claims);
        self
    }

    /// A folder of the user's fixtures laid over the design (`--fixtures`).
    pub fn with_fixtures(mut self, dir: Option<PathBuf>) -> Plan {
        self.fixtures = dir;
        self
    }

    /// One of the design's mutants laid over it (`--mutant`).
    pub fn with_mutant(mut self, mutant: Option<String>) -> Plan {
        self.mutant = mutant;
        self
    }

    /// The user's own files, mapped onto the run (`--config`, `--script`,
    /// `--domain`, `--address`).
    pub fn with_users_files(
        mut self,
        configs: Vec<ConfigArg>,
        scripts: Vec<ConfigArg>,
        domain: Option<String>,
        addresses: Vec<AddressArg>,
    ) -> Plan {
        self.configs = configs;
        self.scripts = scripts;
        self.domain = domain;
        self.addresses = addresses;
        self
    }

    /// On this platform (`--platform debian-12`); none: STACKPROOF_PLATFORM,
    /// else the design's own setting, else the default.
    pub fn on_platform(mut self, platform: Option<String>) -> Plan {
        self.platform = platform;
        self
    }

    /// Only these claims (`--claim`); none means all.
    pub fn with_only(mut self, ids: Vec<String>) -> Plan {
        self.only = ids;
        self
    }

    /// Reads and checks everything the plan names, runs the install
    /// scripts (in throwaway hosts of the run's image) and maps the user's
    /// files: every mistake is found here, before the design starts.
    pub async fn prepare(self) -> Result<Prepared> {
        let mut design = Design::load_with(&self.design, &self.kinds)?;
        if let Some(p) = &self.platform {
            design = design.on_platform(p)?;
        }
        design.claims.extend(self.extra_claims);
        if let Some(m) = &self.mutant {
            design = design.with_mutant(m)?;
        }
        // STACKPROOF_FIXTURES is a layer already; the same folder given as a flag is not laid twice.
        let from_env = std::env::var_os("STACKPROOF_FIXTURES").map(PathBuf::from);
        let mut overlay_report = Vec::new();
        if let Some(dir) = self.fixtures.or(from_env.clone()) {
            if from_env.as_ref() != Some(&dir) {
                design = design.with_overlay(dir.clone())?;
            }
            overlay_report = overlay_use(&design, &dir);
        }
        let claims = select(&design.claims, &self.only)?;
        let scratch = TempDir::new("config");
        let mut configs = self.configs;
        let mut script_report = Vec::new();
        if !self.scripts.is_empty() {
            let docker = crate::docker::connect().await?;
            let image = crate::images::ensure_server_image(&docker, &design.fixtures).await?;
            for s in &self.scripts {
                let ran =
                    crate::config::script::run(&s.path, &s.server, &image.tag, scratch.path())
                        .await?;
                script_report.extend(ran.report);
                configs.push(ConfigArg {
                    host: s.host.clone(),
                    server: s.server.clone(),
                    origin: Some(format!("{} as {} wrote it", ran.target, s.path.display())),
                    path: ran.config,
                });
            }
        }
        let applied = crate::config::apply(
            &design,
            &configs,
            self.domain.as_deref(),
            &self.addresses,
            &scratch.path().join("mapped"),
        )?;
        if let Some(dir) = &applied.overlay {
            design = design.with_users_files(dir.clone())?;
        }
        Ok(Prepared {
            design,
            claims,
            applied,
            script_report,
            overlay_report,
            _scratch: scratch,
        })
    }
}

/// The claims of `all` named in `only` (all of them when it is empty); an
/// ID that names no claim is an error that lists the IDs there are.
pub fn select(all: &[Claim], only: &[String]) -> Result<Vec<Claim>> {
    if let Some(unknown) = only.iter().find(|id| !all.iter().any(|c| &c.id == *id)) {
        return Err(Error::Unknown {
            kind: "claim",
            name: unknown.clone(),
            known: all
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(all
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.id))
        .cloned()
        .collect())
}

/// Which files of the user's fixtures folder `dir` the design reads, and
/// which nothing reads (a misspelt name, a copy under `designs/`, a
/// service no host runs): one line for the used ones, a warning each for
/// the others.
fn overlay_use(design: &Design, dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                files.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    let (mut used, mut unused) = (Vec::new(), Vec::new());
    for rel in files {
        match why_unused(design, &rel) {
            None => used.push(rel),
            Some(why) => unused.push(format!("warning: {rel} is not used: {why}")),
        }
    }
    let mut report = vec![format!(
        "your fixtures {}: {} file(s) laid over the design{}",
        dir.display(),
        used.len(),
        if used.is_empty() {
            String::new()
        } else {
            format!(": {}", used.join(", "))
        }
    )];
    report.extend(unused);
    report
}

/// Why nothing of `design` reads the overlay file `rel`, or None when something does.
fn why_unused(design: &Design, rel: &str) -> Option<String> {
    let spec = &design.parts.spec;
    // A file for one host: `hosts/<host>/<rest>` stands for `<rest>` there.
    let (host, rel) = match rel.strip_prefix("hosts/") {
        Some(rest) => {
            let (h, rest) = rest.split_once('/').unwrap_or((rest, ""));
            if spec.host(h).is_none() {
                return Some(format!("the design has no host `{h}`"));
            }
            (Some(h), rest)
        }
        None => (None, rel),
    };
    if matches!(rel, "design.toml" | "claims.toml") || rel == spec.zone {
        return None;
    }
    if rel.starts_with("variants/") || rel.starts_with("images/") {
        return None;
    }
    let running: Vec<&str> = spec
        .hosts
        .iter()
        .filter(|h| host.is_none_or(|only| only == h.name))
        .flat_map(|h| h.services.iter().map(String::as_str))
        .collect();
    if let Some(rest) = rel.strip_prefix("services/") {
        let (service, _) = rest.split_once('/').unwrap_or((rest, ""));
        if !running.contains(&service) {
            return Some(format!(
                "no host{} runs `{service}`",
                host.map(|h| format!(" (here `{h}`)")).unwrap_or_default()
            ));
        }
        if rel == format!("services/{service}/service.toml") {
            return None;
        }
    }
    // Any other file is read when a running service installs it (or a folder holding it).
    let installed = running.iter().any(|s| {
        design.parts.services.get(*s).is_some_and(|svc| {
            svc.files.iter().any(|f| {
                f.source == rel || rel.starts_with(&format!("{}/", f.source.trim_end_matches('/')))
            })
        })
    });
    if installed {
        None
    } else if rel.starts_with("mutants/") || rel.starts_with("designs/") {
        Some(
            "a folder of your fixtures lays files over the design's by their path in the design (services/<name>/<file>), not under mutants/ or designs/"
                .into(),
        )
    } else {
        Some("no service of the design installs a file by that name".into())
    }
}

/// A plan read, checked and mapped: what starts, and which claims run.
pub struct Prepared {
    /// The design with everything laid over it.
    pub design: Design,
    /// The claims to run, in the claims file's order.
    pub claims: Vec<Claim>,
    applied: Applied,
    script_report: Vec<String>,
    overlay_report: Vec<String>,
    /// The mapped files live as long as the run.
    _scratch: TempDir,
}

impl Prepared {
    /// What a folder of the user's fixtures (`--fixtures`) laid over the
    /// design, and a warning for each of its files nothing of the design reads.
    pub fn overlay_report(&self) -> &[String] {
        &self.overlay_report
    }

    /// What the install scripts did, one line per call made harmless.
    pub fn script_report(&self) -> &[String] {
        &self.script_report
    }

    /// One section per user's file: its mapping lines, additions, warnings
    /// (placeholders such as `{{ server-1.private }}` until a stack fills them).
    pub fn mapping(&self) -> Vec<String> {
        // Before a stack runs there are no addresses: its placeholders in
        // words, never `{{ server-1.public }}` on the user's screen.
        self.applied
            .report
            .iter()
            .map(|r| placeholders_in_words(r))
            .collect()
    }

    /// The mapping with the running stack's addresses in place of its placeholders.
    pub fn mapping_on(&self, stack: &Stack) -> Vec<String> {
        self.applied
            .report
            .iter()
            .map(|r| {
                let mut shown = r.clone();
                for (k, v) in &stack.vars {
                    shown = shown.replace(&format!("{{{{ {k} }}}}"), v);
                }
                shown
            })
            .collect()
    }

    /// A start's failure as the user reads it: the mapped files named by
    /// the user's own paths, and what to write instead of what the server refuses.
    pub fn explain(&self, e: &Error) -> String {
        let mut text = self.applied.in_users_terms(&e.chain());
        for h in &self.applied.hints {
            text.push_str("\n  instead: ");
            text.push_str(h);
        }
        text
    }

    /// The user's file mapped onto `host` (any, when none is named) for
    /// `service`'s server, with that server.
    fn users_file_for(
        &self,
        host: Option<&str>,
        service: &str,
    ) -> Option<(&'static crate::config::registry::Server, &PathBuf)> {
        let server = crate::config::registry::server(service)?;
        let (_, user) = self.applied.sources.iter().find(|(mapped, _)| {
            let mapped = mapped.to_string_lossy();
            let on_host = match mapped.split_once("/hosts/") {
                Some((_, rest)) => host.is_none_or(|h| rest.starts_with(&format!("{h}/"))),
                None => true,
            };
            on_host
                && server
                    .services
                    .iter()
                    .any(|s| mapped.contains(&format!("services/{s}/")))
        })?;
        Some((server, user))
    }

    /// Where in the user's own files a cause found on the servers lives:
    /// the file mapped onto its host for its server, and the line that
    /// decides it when one does (the incoming policy of a firewall, a
    /// database's bind-address), as `file:line`.
    pub fn in_users_files(&self, found: &crate::failure::Found) -> Option<String> {
        let (server, user) =
            self.users_file_for(found.host.as_deref(), found.service.as_deref()?)?;
        let name = crate::config::file_label(user);
        let deciding: &[&str] = match server.name {
            "iptables" => &[
                "default deny",
                "default reject",
                "-P INPUT DROP",
                ":INPUT DROP",
            ],
            "mariadb" => &["bind-address", "bind_address", "skip-networking"],
            _ => &[],
        };
        let line = std::fs::read_to_string(user).ok().and_then(|text| {
            text.lines().position(|l| {
                let code = l.split('#').next().unwrap_or("");
                deciding.iter().any(|d| code.contains(d))
            })
        });
        Some(match line {
            Some(i) => format!("{name}:{}", i + 1),
            None => name,
        })
    }

    /// A stack's note in the user's terms: a server's warning about a file
    /// the user gave ("warning (keepalived on lb-2): (keepalived.conf: Line
    /// 12) unknown state 'SLAVE'", "(Line 2) Unknown keyword") names the
    /// user's file and line instead (mapped files keep the user's line
    /// numbers), so it reads as `lvs-id-slave-lb-02.conf:12`.
    pub fn note_in_users_terms(&self, note: &str) -> String {
        let Some(rest) = note.strip_prefix("warning (") else {
            return note.to_string();
        };
        let Some((service, rest)) = rest.split_once(" on ") else {
            return note.to_string();
        };
        let host = rest
            .split([')', ',', ' '])
            .next()
            .unwrap_or_default()
            .to_string();
        let Some((_, user)) = self.users_file_for(Some(&host), service) else {
            return note.to_string();
        };
        users_line_refs(note, &crate::config::file_label(user))
    }

    /// What the server refused to write instead, one line each.
    pub fn hints(&self) -> &[String] {
        &self.applied.hints
    }

    /// The user's files, when any were given.
    pub fn has_users_files(&self) -> bool {
        !self.applied.report.is_empty()
    }
}

/// What a run of claims says as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run's first stack is up, before any claim runs.
    Up(&'a Stack),
    /// A claim ended (in the claims' order, also on several stacks).
    Ended(&'a Outcome),
    /// Something about the stacks the reader should know ("a claim left
    /// the stack changed; the claims after it run on a fresh one").
    Note(String),
}

/// `{{ server-1.public }}` as "server-1's public address", and the other
/// placeholders of a mapped file likewise.
fn placeholders_in_words(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = rest[start + 2..start + len].trim();
        let parts: Vec<&str> = name.split('.').collect();
        out.push_str(&match parts.as_slice() {
            ["self", net, "iface"] => format!("(this host's interface on {net})"),
            [net, "subnet"] => format!("(the {net} subnet)"),
            [net, "vip"] => format!("(the VIP on {net})"),
            [host, net] => format!("({host}'s address on {net})"),
            _ => format!("({name})"),
        });
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

// Starting a design is the runner's, not loading's: reading a design never
// needs the engine (the layers test in lib.rs holds that direction).
impl crate::design::Design {
    /// Starts the design's servers and waits until they are ready (the runner's).
    pub(super) async fn start(&self) -> Result<crate::stack::Stack> {
        crate::stack::Stack::start_from(&self.name, self.fixtures.clone(), self.parts.clone()).await
    }

    /// Starts the design with mutant `m` laid over it (the runner's).
    pub(super) async fn start_mutant(
        &self,
        m: &crate::mutant::Mutant,
    ) -> Result<crate::stack::Stack> {
        crate::stack::Stack::start(&self.name, m.apply(self.fixtures.clone())?).await
    }
}

/// keepalived's line references in a warning, `(Line N)` and `(<file>:
/// Line N)`, as `(<file of the user's>:N)`.
fn users_line_refs(note: &str, file: &str) -> String {
    let mut out = String::new();
    let mut rest = note;
    while let Some(open) = rest.find('(') {
        let (before, from) = rest.split_at(open);
        out.push_str(before);
        let Some(close) = from.find(')') else {
            rest = from;
            break;
        };
        let inner = &from[1..close];
        let number = inner
            .strip_prefix("Line ")
            .or_else(|| inner.split_once(": Line ").map(|(_, n)| n))
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        match number {
            Some(n) => out.push_str(&format!("({file}:{n})")),
            None => out.push_str(&from[..=close]),
        }
        rest = &from[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_filter_that_names_no_claim_lists_the_ids_there_are() {
        let design = Design::load("simple_web").unwrap();
        let some = select(&design.claims, &["simple_web.issue.spof".into()]).unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!(
            select(&design.claims, &[]).unwrap().len(),
            design.claims.len()
        );
        let e = select(&design.claims, &["simple_web.typo".into()])
            .err()
            .unwrap()
            .chain();
        assert!(e.contains("unknown claim `simple_web.typo`"), "{e}");
        assert!(e.contains("simple_web.issue.spof"), "{e}");
    }

    #[test]
    fn a_fixtures_folder_says_what_it_laid_over_and_what_nothing_reads() {
        let dir = crate::tempdir::TempDir::new("overlay");
        let write = |rel: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "# mine\n").unwrap();
        };
        write("services/nginx/site.conf");
        write("services/nginx/sites.conf");
        write("services/apache/site.conf");
        write("designs/distributed/claims.toml");
        write("hosts/server-2/services/nginx/site.conf");
        let design = Design::load("distributed").unwrap();
        let report = overlay_use(&design, dir.path());
        let all = report.join("\n");
        assert!(
            report[0].ends_with(
                "2 file(s) laid over the design: hosts/server-2/services/nginx/site.conf, services/nginx/site.conf"
            ),
            "{all}"
        );
        assert!(
            all.contains("warning: services/nginx/sites.conf is not used: no service of the design installs a file by that name"),
            "{all}"
        );
        assert!(
            all.contains("warning: services/apache/site.conf is not used: no host runs `apache`"),
            "{all}"
        );
        assert!(
            all.contains(
                "warning: designs/distributed/claims.toml is not used: a folder of your fixtures"
            ),
            "{all}"
        );
    }

    #[test]
    fn placeholders_read_as_words_before_a_stack_runs() {
        assert_eq!(
            super::placeholders_in_words(
                "server web-01 1.2.3.4:80 -> server-1 {{ server-1.public }}:80; -i {{ self.private.iface }} -s {{ private.subnet }}"
            ),
            "server web-01 1.2.3.4:80 -> server-1 (server-1's address on public):80; -i (this host's interface on private) -s (the private subnet)"
        );
    }

    #[test]
    fn keepalived_line_references_name_the_users_file() {
        assert_eq!(
            super::users_line_refs(
                "warning (keepalived on lb-2): (keepalived.conf: Line 12) (VI_01) unknown state 'SLAVE', defaulting to BACKUP",
                "lb-02.conf"
            ),
            "warning (keepalived on lb-2): (lb-02.conf:12) (VI_01) unknown state 'SLAVE', defaulting to BACKUP"
        );
        assert_eq!(
            super::users_line_refs("(Line 2) Unknown keyword 'lvs_id'", "a.conf"),
            "(a.conf:2) Unknown keyword 'lvs_id'"
        );
        // Anything else in brackets stays.
        assert_eq!(
            super::users_line_refs("(VI_01) no (Line x", "a"),
            "(VI_01) no (Line x"
        );
    }
}
