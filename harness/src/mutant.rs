//! Mutants: broken variants of a design, each naming the claim it must
//! make FAIL. A mutant is a patch over the base fixtures, holding only
//! what it changes, so a change to a design never leaves a stale copy:
//!
//! ```toml
//! # fixtures/designs/distributed/mutants/balance_source/mutant.toml
//! fails = "distributed.lb.round_robin"
//! why = "HAProxy balances by source address"
//!
//! # Small replacements in any fixture file: the text must be there, once.
//! [[patch]]
//! file = "services/haproxy/haproxy.cfg"
//! replace = "balance roundrobin"
//! with = "balance source"
//!
//! # Key overrides of the design file: tables merge, hosts match by name
//! # (`remove = true` drops one, a new name adds one, `unset = ["key"]`
//! # removes a key).
//! [design.vars]
//! db_read_host = "{{ server-1.public }}"
//! ```
//!
//! `variant = "reencrypt"` lays a documented variant (a design folder's `variants/`)
//! on the base first; any other file in the mutant's folder replaces the
//! file of the same path (for a file the base does not have).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fixtures::Fixtures;
use crate::tempdir::TempDir;

/// A broken variant of a design's fixtures, and the claim it must make fail.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// Its folder's name.
    pub name: String,
    /// The folder: `mutant.toml`, and any whole files it adds.
    pub dir: PathBuf,
    /// The claim it must fail.
    pub fails: String,
    /// What it breaks, in one line.
    pub why: String,
    file: MutantFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MutantFile {
    fails: String,
    why: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    design: Option<toml::Table>,
    #[serde(default)]
    patch: Vec<Patch>,
}

/// One replacement in one fixture file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    /// The fixture path, as in `fixtures/` (`services/nginx/site.conf`).
    file: String,
    /// The text to replace; it must occur exactly once. Empty: append `with`.
    #[serde(default)]
    replace: String,
    /// What replaces it.
    with: String,
}

impl Mutant {
    /// The fixture files its patches change (`services/nginx/nginx.conf`,
    /// `dns.zone`), when the mutant is only its `mutant.toml` (no variant,
    /// no whole files of its own); `None` otherwise. Whether a running stack
    /// can take it: [`crate::stack::Stack::in_place`].
    pub fn patched_files(&self) -> Option<Vec<String>> {
        if self.file.variant.is_some() {
            return None;
        }
        let only_the_toml = std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(|e| e.ok())
            .all(|e| e.file_name() == "mutant.toml");
        if !only_the_toml {
            return None;
        }
        let mut files: Vec<String> = Vec::new();
        for p in &self.file.patch {
            if !files.contains(&p.file) {
                files.push(p.file.clone());
            }
        }
        Some(files)
    }

    /// `base` (a design's fixtures) with this mutant laid on top: its variant, its
    /// whole files, then its design overrides and patches, written to a
    /// temporary folder that lives as long as the returned fixtures.
    pub fn apply(&self, base: Fixtures) -> Result<Fixtures> {
        let mut fixtures = base;
        if let Some(v) = &self.file.variant {
            fixtures = fixtures.with_variant(v)?;
        }
        fixtures = fixtures.with_overlay(self.dir.clone())?;
        let toml_path = self.dir.join("mutant.toml");
        let invalid = |detail: String| Error::InvalidFixture {
            path: toml_path.clone(),
            detail,
        };
        let guard = Arc::new(TempDir::new(&format!("mutant-{}", self.name)));
        let out = guard.path().to_path_buf();
        let write = |rel: &str, text: &str| -> Result<()> {
            let path = out.join(rel);
            std::fs::create_dir_all(path.parent().expect("a relative file path"))
                .and_then(|()| std::fs::write(&path, text))
                .map_err(Error::io(format!("write `{}`", path.display())))
        };
        if let Some(overrides) = &self.file.design {
            let rel = crate::spec::DESIGN_FILE;
            let (path, text) = fixtures.read(rel)?;
            let mut base: toml::Table =
                toml::from_str(&text).map_err(|e| Error::InvalidFixture {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
            merge(&mut base, overrides).map_err(|e| invalid(format!("[design]: {e}")))?;
            write(rel, &toml::to_string(&base).expect("a table serialises"))?;
        }
        // Patches apply in order, each to the file as the layers below (and earlier patches) left it.
        let mut patched: std::collections::BTreeMap<String, String> = Default::default();
        for p in &self.file.patch {
            let text = match patched.get(&p.file) {
                Some(t) => t.clone(),
                None => fixtures.read(&p.file)?.1,
            };
            let new = if p.replace.is_empty() {
                format!("{text}{}", p.with)
            } else {
                match text.matches(&p.replace).count() {
                    1 => text.replacen(&p.replace, &p.with, 1),
                    n => {
                        return Err(invalid(format!(
                            "the text to replace in `{}` occurs {n} times, not once (did the base file change? update the patch):\n{}",
                            p.file, p.replace
                        )));
                    }
                }
            };
            patched.insert(p.file.clone(), new);
        }
        for (rel, text) in &patched {
            write(rel, text)?;
        }
        if out.exists() {
            fixtures = fixtures.with_owned_overlay(out, guard)?;
        }
        Ok(fixtures)
    }
}

/// Merges `over` into `base`: tables recursively, arrays of tables with a
/// `name` by name (`remove = true` drops an entry), anything else replaced.
fn merge(base: &mut toml::Table, over: &toml::Table) -> std::result::Result<(), String> {
    // `unset = ["memory_mib"]` removes keys the base sets.
    if let Some(unset) = over.get("unset") {
        for key in unset.as_array().into_iter().flatten() {
            let key = key.as_str().ok_or("`unset` lists key names")?;
            base.remove(key)
                .ok_or_else(|| format!("`unset`: the base sets no `{key}`"))?;
        }
    }
    for (k, v) in over.iter().filter(|(k, _)| *k != "unset") {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o)?,
            (Some(toml::Value::Array(b)), toml::Value::Array(o))
                if o.iter().all(|e| e.get("name").is_some()) =>
            {
                for entry in o {
                    let name = entry.get("name").expect("checked");
                    let remove = entry.get("remove").and_then(|r| r.as_bool()) == Some(true);
                    let found = b.iter().position(|e| e.get("name") == Some(name));
                    match (found, remove) {
                        (Some(i), true) => {
                            b.remove(i);
                        }
                        (None, true) => {
                            return Err(format!("`{k}` has no entry named {name} to remove"));
                        }
                        (Some(i), false) => {
                            let (Some(bt), Some(ot)) = (b[i].as_table_mut(), entry.as_table())
                            else {
                                return Err(format!("`{k}` entries must be tables"));
                            };
                            merge(bt, ot)?;
                        }
                        (None, false) => b.push(entry.clone()),
                    }
                }
            }
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// The mutants in folder `root`, by name.
pub(crate) fn mutants_in(root: &Path) -> Result<Vec<Mutant>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(out);
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let file = dir.join("mutant.toml");
        let text = std::fs::read_to_string(&file).map_err(|source| Error::Fixture {
            path: file.clone(),
            source,
        })?;
        let m: MutantFile = toml::from_str(&text).map_err(|e| Error::InvalidFixture {
            path: file.clone(),
            detail: e.to_string(),
        })?;
        out.push(Mutant {
            name: entry.file_name().to_string_lossy().into_owned(),
            dir,
            fails: m.fails.clone(),
            why: m.why.clone(),
            file: m,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_overrides_merge_tables_and_hosts_by_name() {
        let mut base: toml::Table = toml::from_str(
            r#"
            zone = "z"
            [[hosts]]
            name = "a"
            services = ["x"]
            [[hosts]]
            name = "b"
            services = ["y"]
            [vars]
            one = "1"
            two = "2"
            "#,
        )
        .unwrap();
        let over: toml::Table = toml::from_str(
            r#"
            [[hosts]]
            name = "a"
            services = ["x", "z"]
            [[hosts]]
            name = "b"
            remove = true
            [[hosts]]
            name = "c"
            services = []
            [vars]
            two = "II"
            "#,
        )
        .unwrap();
        merge(&mut base, &over).unwrap();
        let hosts = base["hosts"].as_array().unwrap();
        let names: Vec<&str> = hosts.iter().map(|h| h["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(hosts[0]["services"].as_array().unwrap().len(), 2);
        assert_eq!(base["vars"]["one"].as_str(), Some("1"));
        assert_eq!(base["vars"]["two"].as_str(), Some("II"));
        assert_eq!(base["zone"].as_str(), Some("z"));
    }
}
