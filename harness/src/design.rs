//! A design is a folder:
//!
//! ```text
//! my_design/
//!   design.toml    networks, hosts, the services on each, variables, the zone file's name
//!   dns.zone       the zone the run's DNS server serves
//!   claims.toml    the design's sentences, each a check kind with its parameters
//!   mutants/       broken variants, each naming the claim it must make FAIL
//!   variants/      documented remedies laid over the design (optional)
//!   services/      the design's own service definitions or config files (optional)
//! ```
//!
//! The service library (`fixtures/services/`), the app and the image recipe
//! are shared: a design uses services by name, and its own `services/`
//! folder replaces any file of the library (a fixture layer above it). The
//! built-in designs live in `fixtures/designs/`; `stackproof check
//! ./path/to/folder` runs any other.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fixtures::Fixtures;

/// Where a design's folder is: a built-in design by name, or any folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesignDir {
    /// The folder's name (`scale_up`), used in labels and reports.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
}

impl DesignDir {
    /// `name_or_path` is a built-in design's name (`scale_up`) or a path to a
    /// design folder (anything with a `/`, or an existing folder holding a
    /// `design.toml`).
    pub fn locate(name_or_path: &str) -> Result<DesignDir> {
        let as_path = Path::new(name_or_path);
        let looks_like_path = name_or_path.contains('/') || name_or_path.starts_with('.');
        if looks_like_path || as_path.join("design.toml").is_file() {
            if !as_path.join("design.toml").is_file() {
                return Err(Error::InvalidFixture {
                    path: as_path.to_path_buf(),
                    detail: if as_path.is_dir() {
                        "this folder has no design.toml: a design folder holds design.toml, its \
                         zone and claims.toml (`stackproof new <name>` writes a starting one)"
                            .into()
                    } else {
                        "no such folder: give a built-in design's name or a design folder's path"
                            .into()
                    },
                });
            }
            let dir = as_path
                .canonicalize()
                .map_err(Error::io(format!("resolve `{name_or_path}`")))?;
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "design".into());
            return Ok(DesignDir { name, dir });
        }
        let dir = builtin_root().join(name_or_path);
        if dir.join("design.toml").is_file() {
            return Ok(DesignDir {
                name: name_or_path.to_string(),
                dir,
            });
        }
        Err(Error::Unknown {
            kind: "design",
            name: name_or_path.into(),
            known: format!(
                "{} (or a design folder's path, e.g. ./my_design)",
                builtin_names().join(", ")
            ),
        })
    }

    /// The design's fixture layers: the shared library, the design's folder
    /// over it, then `STACKPROOF_FIXTURES` when set.
    pub fn fixtures(&self) -> Result<Fixtures> {
        Fixtures::for_design(self.dir.clone())
    }

    /// The design's mutants (`mutants/<name>/mutant.toml`), by name.
    pub fn mutants(&self) -> Result<Vec<crate::mutant::Mutant>> {
        crate::mutant::mutants_in(&self.dir.join("mutants"))
    }
}

/// Writes a new design folder `folder` as a copy of built-in design `from`,
/// its claim IDs renamed to the folder's name and its design.toml and
/// claims.toml headed as the user's own design (the built-in's wording
/// kept only as where it started); returns how many files it wrote. The
/// built-in's mutants are left out: each breaks the built-in's files, and
/// a new design's files will differ, so they would prove nothing about it.
/// An existing folder is never touched.
pub fn new_design(folder: &Path, from: &str) -> Result<usize> {
    let source = DesignDir::locate(from)?;
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .ok_or_else(|| Error::InvalidFixture {
            path: folder.to_path_buf(),
            detail: "a design's folder name becomes its claim IDs' prefix: use letters, digits, `_` or `-`".into(),
        })?;
    if folder.exists() {
        return Err(Error::InvalidFixture {
            path: folder.to_path_buf(),
            detail: "already exists: `stackproof new` writes a new folder and never changes one"
                .into(),
        });
    }
    let old_prefix = format!("\"{}.", source.name);
    let new_prefix = format!("\"{name}.");
    let mut written = 0;
    let mut stack = vec![source.dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).map_err(Error::io(format!("read `{}`", dir.display())))?
        {
            let path = entry
                .map_err(Error::io(format!("read `{}`", dir.display())))?
                .path();
            let rel = path
                .strip_prefix(&source.dir)
                .expect("walked below the design");
            if rel == Path::new("mutants") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let target = folder.join(rel);
            std::fs::create_dir_all(target.parent().expect("a file in a folder"))
                .map_err(Error::io(format!("create `{}`", target.display())))?;
            let bytes =
                std::fs::read(&path).map_err(Error::io(format!("read `{}`", path.display())))?;
            let bytes = match String::from_utf8(bytes) {
                // The new design says which release its servers run on, so a
                // later change of the default does not move it.
                Ok(text) if rel == Path::new(crate::spec::DESIGN_FILE) => {
                    let mut text = headed_as_new(&text, &name, &source.name);
                    if !text.contains("\nplatform") {
                        let platform = source.fixtures()?.platform()?;
                        text = insert_platform(&text, platform.name());
                    }
                    text.into_bytes()
                }
                Ok(text) if rel == Path::new(CLAIMS_FILE) => {
                    headed_as_new(&text, &name, &source.name)
                        .replace(&old_prefix, &new_prefix)
                        .into_bytes()
                }
                Ok(text) if path.extension().is_some_and(|e| e == "toml") => {
                    text.replace(&old_prefix, &new_prefix).into_bytes()
                }
                Ok(text) => text.into_bytes(),
                Err(e) => e.into_bytes(),
            };
            std::fs::write(&target, bytes)
                .map_err(Error::io(format!("write `{}`", target.display())))?;
            written += 1;
        }
    }
    Ok(written)
}

/// A built-in's design.toml or claims.toml as the first version of design
/// `name`'s: its opening comment (the built-in's own description) replaced
/// by one saying where it started and what to change, and the design's
/// `summary` marked as the built-in's until the user writes their own.
fn headed_as_new(text: &str, name: &str, from: &str) -> String {
    let mut lines = text.lines().peekable();
    // The built-in's opening comment describes the built-in: left out.
    while lines.next_if(|l| l.starts_with('#')).is_some() {}
    let mut out = format!(
        "# {name}: a design of your own, started from the built-in `{from}` by\n\
         # `stackproof new`. Its hosts, services and claims are still {from}'s:\n\
         # change them to say what your design is and promises, and add a\n\
         # mutant (mutants/<name>/mutant.toml) for each claim, to prove it can\n\
         # fail (docs/designs.md).\n"
    );
    for line in lines {
        match line
            .strip_prefix("summary = \"")
            .and_then(|v| v.strip_suffix('"'))
        {
            Some(theirs) => out.push_str(&format!(
                "summary = \"{name} (so far {from}'s: {theirs})\"\n"
            )),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// `design_toml` with `platform = "<name>"` before its first table (a
/// top-level key must come before any `[table]` in TOML).
fn insert_platform(design_toml: &str, name: &str) -> String {
    let line = format!(
        "# The Debian release its servers run on (debian-13, debian-12); --platform overrides it.\nplatform = \"{name}\"\n"
    );
    let at = design_toml
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .find(|&i| design_toml[i..].starts_with('['))
        .unwrap_or(design_toml.len());
    format!("{}{line}\n{}", &design_toml[..at], &design_toml[at..])
}

/// The folder of the built-in designs.
pub fn builtin_root() -> PathBuf {
    Fixtures::builtin_dir().join("designs")
}

/// The built-in designs, in teaching order (the order of the design texts),
/// then any other folder of `fixtures/designs/` by name.
pub fn builtin_names() -> Vec<String> {
    const ORDER: &[&str] = &["simple_web", "distributed", "secured_monitored", "scale_up"];
    let mut names: Vec<String> = std::fs::read_dir(builtin_root())
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("design.toml").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|n| {
        (
            ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()),
            n.clone(),
        )
    });
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_mutant_applies_to_its_design() {
        for design in ["simple_web", "distributed", "secured_monitored", "scale_up"] {
            for m in mutants(design).unwrap() {
                let f = m
                    .apply(fixtures(design).unwrap())
                    .unwrap_or_else(|e| panic!("mutant {design}/{}: {}", m.name, e.chain()));
                crate::spec::DesignSpec::load(&f)
                    .unwrap_or_else(|e| panic!("mutant {design}/{}: {}", m.name, e.chain()));
            }
        }
    }

    #[test]
    fn builtin_designs_are_found_by_name_and_by_path() {
        let names = builtin_names();
        assert_eq!(
            &names[..4],
            ["simple_web", "distributed", "secured_monitored", "scale_up"]
        );
        let by_name = DesignDir::locate("scale_up").unwrap();
        let path = by_name.dir.to_string_lossy().into_owned();
        assert_eq!(DesignDir::locate(&path).unwrap(), by_name);
        let e = DesignDir::locate("lamp").unwrap_err().to_string();
        assert!(e.contains("lamp") && e.contains("simple_web"), "{e}");
        let e = DesignDir::locate("./no/such/design")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such folder"), "{e}");
    }
}

/// A design read and checked: topology, claims (each bound to its kind),
/// mutants. Reading is separate from running: [`crate::Runner`] runs it.
#[derive(Debug, Clone)]
pub struct Design {
    /// The folder's name (`scale_up`).
    pub(crate) name: String,
    /// Its fixture layers (the shared library, the folder, any overlay).
    pub(crate) fixtures: Fixtures,
    /// Its topology.
    pub(crate) spec: crate::spec::DesignSpec,
    /// Its files as the servers start from them (topology, services, zone).
    pub(crate) parts: crate::spec::Parts,
    /// Its claims, in the claims file's order.
    pub(crate) claims: Vec<crate::claim::Claim>,
    /// Its mutants, by name.
    pub(crate) mutants: Vec<crate::mutant::Mutant>,
}

/// The fixture layers of design `name_or_path` (a built-in name or a
/// folder): the library, the design's folder, STACKPROOF_FIXTURES.
pub fn fixtures(name_or_path: &str) -> Result<Fixtures> {
    DesignDir::locate(name_or_path)?.fixtures()
}

/// The mutants of `design` (a name or a folder).
#[cfg(test)]
pub(crate) fn mutants(design: &str) -> Result<Vec<crate::mutant::Mutant>> {
    DesignDir::locate(design)?.mutants()
}

/// The claims file of a design folder.
pub const CLAIMS_FILE: &str = "claims.toml";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsFile {
    #[serde(default)]
    claim: Vec<ClaimEntry>,
}

#[derive(serde::Deserialize)]
struct ClaimEntry {
    id: String,
    says: String,
    kind: String,
    #[serde(default)]
    proves: Option<String>,
    #[serde(default)]
    skip: Option<String>,
    /// What to look at when it fails (a directive, a file), for the reader.
    #[serde(default)]
    look_at: Option<String>,
    /// Its budgets judged on this percentile of its runs when repeated.
    #[serde(default)]
    percentile: Option<u8>,
    /// A documented remedy (a folder under `variants/`) the claim is measured on.
    #[serde(default)]
    variant: Option<String>,
    /// Claims of the design that must still hold with `variant`.
    #[serde(default)]
    still_hold: Vec<String>,
    #[serde(flatten)]
    params: toml::Table,
}

impl Design {
    /// The built-in designs' names, simplest first.
    pub fn builtin_names() -> Vec<String> {
        builtin_names()
    }

    /// The fixture layers of design `name_or_path` (a built-in name or a
    /// folder) without reading its claims: the library, the design's
    /// folder, STACKPROOF_FIXTURES.
    pub fn fixtures_of(name_or_path: &str) -> Result<Fixtures> {
        fixtures(name_or_path)
    }

    /// The folder's name (`scale_up`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its claims, in the claims file's order.
    pub fn claims(&self) -> &[crate::claim::Claim] {
        &self.claims
    }

    /// Its fixture layers (the shared library, the folder, any overlay).
    pub fn fixtures(&self) -> &Fixtures {
        &self.fixtures
    }

    /// Its hosts' names, as the design file gives them.
    pub fn host_names(&self) -> Vec<String> {
        self.spec.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// Its mutants, by name.
    pub fn mutants(&self) -> &[crate::mutant::Mutant] {
        &self.mutants
    }

    /// Reads design `name_or_path` (a built-in name or a folder) with the
    /// library's check kinds.
    pub fn load(name_or_path: &str) -> Result<Design> {
        Self::load_with(name_or_path, &crate::kinds::Kinds::builtin())
    }

    /// Reads a design with `kinds` (the library's plus a user crate's own).
    pub fn load_with(name_or_path: &str, kinds: &crate::kinds::Kinds) -> Result<Design> {
        let located = DesignDir::locate(name_or_path)?;
        let fixtures = located.fixtures()?;
        Self::from_parts(located, fixtures, kinds)
    }

    /// The same design with `dir` laid over its files (a user's `--fixtures`),
    /// read again: the overlay may replace any of them.
    pub fn with_overlay(self, dir: PathBuf) -> Result<Design> {
        let fixtures = self.fixtures.clone().with_overlay(dir)?;
        self.with_fixtures(fixtures)
    }

    /// The design with the user's own mapped files (`--config`) laid over it.
    pub fn with_users_files(self, dir: PathBuf) -> Result<Design> {
        let fixtures = self.fixtures.clone().with_users_files(dir)?;
        self.with_fixtures(fixtures)
    }

    /// The same design over `fixtures`, its topology, services and zone read again.
    /// The same design on platform `name` (`debian-12`), whatever its
    /// design.toml says, read again for that release.
    pub fn on_platform(self, name: &str) -> Result<Design> {
        let fixtures = self.fixtures.clone().on_platform(name);
        fixtures.platform()?;
        self.with_fixtures(fixtures)
    }

    /// The platform its servers run on.
    pub fn platform(&self) -> Result<crate::Platform> {
        self.fixtures.platform()
    }

    fn with_fixtures(self, fixtures: Fixtures) -> Result<Design> {
        let parts = crate::spec::Parts::read(&fixtures)?;
        Ok(Design {
            spec: parts.spec.clone(),
            parts,
            fixtures,
            ..self
        })
    }

    fn from_parts(
        located: DesignDir,
        fixtures: Fixtures,
        kinds: &crate::kinds::Kinds,
    ) -> Result<Design> {
        let parts = crate::spec::Parts::read(&fixtures)?;
        let spec = parts.spec.clone();
        let claims = read_claims(&located, &fixtures, &parts, kinds)?;
        let mutants = located.mutants()?;
        for m in &mutants {
            if !claims.iter().any(|c| c.id == m.fails) {
                return Err(Error::InvalidFixture {
                    path: m.dir.join("mutant.toml"),
                    detail: format!(
                        "`fails = \"{}\"` names no claim of {}; its claims: {}",
                        m.fails,
                        located.name,
                        claims
                            .iter()
                            .map(|c| c.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        Ok(Design {
            name: located.name,
            fixtures,
            spec,
            parts,
            claims,
            mutants,
        })
    }

    /// The same design with its mutant `name` laid over it (a broken variant,
    /// to see what it breaks), read again.
    pub fn with_mutant(self, name: &str) -> Result<Design> {
        let m = self
            .mutants
            .iter()
            .find(|m| m.name == name)
            .cloned()
            .ok_or_else(|| Error::Unknown {
                kind: "mutant",
                name: name.into(),
                known: self
                    .mutants
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let fixtures = m.apply(self.fixtures.clone())?;
        self.with_fixtures(fixtures)
    }
}

/// Reads `claims.toml`: each claim's kind found, its parameters checked
/// against the kind and the design (hosts, services, networks by name).
fn read_claims(
    located: &DesignDir,
    fixtures: &Fixtures,
    parts: &crate::spec::Parts,
    kinds: &crate::kinds::Kinds,
) -> Result<Vec<crate::claim::Claim>> {
    let spec = &parts.spec;
    use crate::kinds::{Known, Params, at_line};
    let (path, text) = fixtures.read(CLAIMS_FILE)?;
    let file: ClaimsFile = toml::from_str(&text).map_err(|e| Error::InvalidFixture {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    let known = Known {
        hosts: spec.hosts.iter().map(|h| h.name.as_str()).collect(),
        services: crate::spec::service_names(fixtures).into_iter().collect(),
        networks: spec.networks.iter().map(|n| n.name.as_str()).collect(),
        placed: spec
            .hosts
            .iter()
            .map(|h| {
                (
                    h.name.as_str(),
                    h.services.iter().map(String::as_str).collect(),
                )
            })
            .collect(),
    };
    let mut claims: Vec<crate::claim::Claim> = Vec::new();
    // (claim index, variant, still_hold, where), resolved once every claim is read.
    let mut variants = Vec::new();
    for entry in file.claim {
        let here = at_line(&path, &text, &format!("\"{}\"", entry.id));
        if claims.iter().any(|c| c.id == entry.id) {
            return Err(Error::InvalidFixture {
                path: here,
                detail: format!("claim `{}` is listed twice", entry.id),
            });
        }
        let kind = kinds
            .get(&entry.kind)
            .ok_or_else(|| Error::InvalidFixture {
                path: here.clone(),
                detail: format!(
                    "claim `{}`: no check kind `{}`; `stackproof kinds` lists them: {}",
                    entry.id,
                    entry.kind,
                    kinds.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                ),
            })?;
        let params = Params::check(kind, entry.params, &known, &here, &entry.id)?;
        if let Err(detail) = check_placement(kind, &params, parts) {
            return Err(Error::InvalidFixture {
                path: here,
                detail: format!("claim `{}`: {detail}", entry.id),
            });
        }
        let hosts = concerned_hosts(kind, &params, spec);
        match (entry.variant, entry.still_hold.is_empty()) {
            (Some(v), _) => variants.push((claims.len(), v, entry.still_hold, here.clone())),
            (None, false) => {
                return Err(Error::InvalidFixture {
                    path: here,
                    detail: format!(
                        "claim `{}`: `still_hold` names claims to run with a variant, and the claim has no `variant`",
                        entry.id
                    ),
                });
            }
            (None, true) => {}
        }
        if let Some(p) = entry.percentile.filter(|p| !(1..=100).contains(p)) {
            return Err(Error::InvalidFixture {
                path: here,
                detail: format!(
                    "claim `{}`: `percentile = {p}`: a percentile is 1 to 100 (95 judges a repeated claim's budgets on the 95th percentile of its runs)",
                    entry.id
                ),
            });
        }
        claims.push(crate::claim::Claim {
            hosts,
            proves: entry.proves.unwrap_or_else(|| kind.doc.to_string()),
            id: entry.id,
            says: entry.says,
            kind: kind.name,
            params: std::sync::Arc::new(params),
            check: kind.check,
            skip: entry.skip,
            look_at: entry.look_at,
            percentile: entry.percentile,
            variant: None,
            facts: kind.facts,
        });
    }
    for (i, name, still_hold, here) in variants {
        let variant = variant_of(&claims, i, name, &still_hold, fixtures, here)?;
        claims[i].variant = Some(variant);
    }
    if claims.is_empty() {
        return Err(Error::InvalidFixture {
            path,
            detail: format!(
                "{} has no claims: add `[[claim]]` entries (see `stackproof kinds`)",
                located.name
            ),
        });
    }
    Ok(claims)
}

/// The hosts a claim concerns: those its parameters name, and the servers
/// its kind's area judges though no parameter names their host (a broken
/// `balance` is the load balancer's, a missing series the monitoring
/// server's).
fn concerned_hosts(
    kind: &crate::kinds::Kind,
    params: &crate::kinds::Params,
    spec: &crate::spec::DesignSpec,
) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for p in kind.params {
        match p.ty {
            crate::kinds::Ty::Host => hosts.push(params.host(p.name).to_string()),
            crate::kinds::Ty::Hosts => {
                hosts.extend(params.list(p.name).iter().map(|h| h.to_string()))
            }
            _ => {}
        }
    }
    let judged: &[&str] = match kind.name.split('.').next() {
        Some("lb") => &["haproxy", "haproxy-tls"],
        Some("monitoring") => &["prometheus"],
        _ => &[],
    };
    for h in &spec.hosts {
        if h.services.iter().any(|s| judged.contains(&s.as_str())) {
            hosts.push(h.name.clone());
        }
    }
    hosts.retain(|h| !h.is_empty());
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Claim `i`'s `variant` (a folder `variants/<name>/` of the design) and the
/// claims that must still hold with it, each a claim without a variant.
fn variant_of(
    claims: &[crate::claim::Claim],
    i: usize,
    name: String,
    still_hold: &[String],
    fixtures: &Fixtures,
    here: PathBuf,
) -> Result<crate::claim::Variant> {
    if fixtures.clone().with_variant(&name).is_err() {
        return Err(Error::InvalidFixture {
            path: here,
            detail: format!(
                "claim `{}`: no variant `{name}`: a variant is a folder `variants/{name}/` of the design",
                claims[i].id
            ),
        });
    }
    let mut held = Vec::new();
    for id in still_hold {
        match claims.iter().find(|c| &c.id == id) {
            Some(c) if c.variant.is_none() => held.push(c.clone()),
            _ => {
                return Err(Error::InvalidFixture {
                    path: here,
                    detail: format!(
                        "claim `{}`: `still_hold` names `{id}`, which is not a claim of this design without a variant of its own; they are: {}",
                        claims[i].id,
                        claims
                            .iter()
                            .filter(|c| c.variant.is_none())
                            .map(|c| c.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    }
    Ok(crate::claim::Variant {
        name,
        still_hold: held,
    })
}

/// What a claim names that the design's topology must bear out, checked
/// before anything starts: a `*_service` fault's service runs on each host
/// it is applied to, and a kind that reads a server's own view finds that
/// server on the host it names.
fn check_placement(
    kind: &crate::kinds::Kind,
    params: &crate::kinds::Params,
    parts: &crate::spec::Parts,
) -> std::result::Result<(), String> {
    let declares = |n: &str| kind.params.iter().any(|p| p.name == n);
    let services_on = |host: &str| -> Vec<String> {
        parts
            .spec
            .host(host)
            .map(|h| h.services.clone())
            .unwrap_or_default()
    };
    if declares("fault") && declares("service") && declares("hosts") {
        let (fault, service) = (params.text("fault"), params.text("service"));
        if fault.ends_with("_service") {
            if service.is_empty() {
                return Err(format!(
                    "`fault = \"{fault}\"` needs `service`, the service it happens to"
                ));
            }
            for host in params.list("hosts") {
                let on = services_on(host);
                if !on.iter().any(|s| s == service) {
                    return Err(format!(
                        "`fault = \"{fault}\"` on `{host}` with `service = \"{service}\"`, which `{host}` does not run; it runs: {}",
                        on.join(", ")
                    ));
                }
            }
        }
    }
    for view in kind.facts.server_views() {
        let (param, process, server) = (view.param(), view.process(), view.server());
        let name = kind.name;
        if params.text(param).is_empty() {
            continue;
        }
        let host = params.text(param);
        let on = services_on(host);
        let runs = on.iter().any(|s| {
            parts
                .services
                .get(s)
                .is_some_and(|spec| spec.processes.iter().any(|p| p == process))
        });
        if !runs {
            return Err(format!(
                "`{name}` reads {server}'s own view on `{param}` = `{host}`, and `{host}` runs no {server} (its services: {})",
                on.join(", ")
            ));
        }
    }
    Ok(())
}
