//! Fixtures: the plain configuration files a design is built from, in layers.
//!
//! The built-in layer is the repository's `fixtures/`. On top of it a user's
//! own folder (`--fixtures DIR` or STACKPROOF_FIXTURES) and, for a mutant run,
//! the mutant's folder replace files of the same relative path. The top-most
//! layer that has a file wins; nothing is merged within a file.
//!
//! Files may hold `{{ name }}` placeholders, filled at run time from the
//! running topology: `{{ server-1.public }}` is server-1's address on the
//! `public` network, `{{ self.name }}` the host being configured, and design
//! variables (`[vars]` in the design file) by their name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A design's topology file, in a design's folder.
pub(crate) const DESIGN_FILE: &str = "design.toml";

/// The layered fixture folders of a run, bottom first.
#[derive(Debug, Clone)]
pub struct Fixtures {
    layers: Vec<PathBuf>,
    /// Temporary layers (a mutant's patched files), removed with the last clone.
    owned: Vec<std::sync::Arc<crate::tempdir::TempDir>>,
    /// The layer of the user's own files (`--config`, mapped), when there is one.
    users: Option<PathBuf>,
    /// The platform asked for (`--platform`, STACKPROOF_PLATFORM), over
    /// the design's own setting.
    platform: Option<String>,
}

impl Fixtures {
    /// The built-in fixtures: the source tree's `fixtures/` when it is
    /// there (so edits show without a rebuild), else the copy embedded in
    /// the binary, unpacked once into the user's cache (an installed
    /// binary, run anywhere). STACKPROOF_EMBEDDED=1 forces the embedded copy.
    pub fn builtin_dir() -> PathBuf {
        static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
            if source.is_dir() && std::env::var_os("STACKPROOF_EMBEDDED").is_none() {
                return source;
            }
            match unpack_embedded() {
                Ok(dir) => dir,
                Err(e) => {
                    // Nothing can run without fixtures: say where it failed and stop here.
                    eprintln!("stackproof: {}", e.chain());
                    std::process::exit(2)
                }
            }
        })
        .clone()
    }

    /// The built-in fixtures, plus STACKPROOF_FIXTURES on top when it is set.
    pub fn from_env() -> Result<Self> {
        let mut f = Fixtures {
            layers: vec![Self::builtin_dir()],
            owned: Vec::new(),
            users: None,
            platform: std::env::var(crate::platform::PLATFORM_ENV)
                .ok()
                .filter(|p| !p.is_empty()),
        };
        if let Some(dir) = std::env::var_os("STACKPROOF_FIXTURES") {
            f = f.with_overlay(PathBuf::from(dir))?;
        }
        Ok(f)
    }

    /// The layers of a design: the built-in library, the design's folder
    /// over it (its `services/`, zone, variants), then STACKPROOF_FIXTURES.
    pub fn for_design(dir: PathBuf) -> Result<Self> {
        let mut f = Fixtures {
            layers: vec![Self::builtin_dir(), dir],
            owned: Vec::new(),
            users: None,
            platform: std::env::var(crate::platform::PLATFORM_ENV)
                .ok()
                .filter(|p| !p.is_empty()),
        };
        if let Some(dir) = std::env::var_os("STACKPROOF_FIXTURES") {
            f = f.with_overlay(PathBuf::from(dir))?;
        }
        Ok(f)
    }

    /// Runs on platform `name` (`debian-12`), whatever the design says.
    pub fn on_platform(mut self, name: &str) -> Self {
        self.platform = Some(name.to_string());
        self
    }

    /// The platform these fixtures run on: the one asked for, else the
    /// design's `platform` in design.toml, else the platforms file's default.
    pub fn platform(&self) -> Result<crate::platform::Platform> {
        let designs = match &self.platform {
            Some(_) => None,
            None => self.read(DESIGN_FILE).ok(),
        };
        let from_design = match &designs {
            Some((path, text)) => {
                let table: toml::Table =
                    toml::from_str(text).map_err(|e| Error::InvalidFixture {
                        path: path.clone(),
                        detail: e.to_string(),
                    })?;
                table
                    .get("platform")
                    .and_then(|v| v.as_str())
                    .map(String::from)
            }
            None => None,
        };
        let asked = self.platform.clone().or(from_design);
        let (path, text) = self.read(crate::platform::PLATFORMS_FILE)?;
        crate::platform::Platform::from_file(&text, &path, asked.as_deref())
    }

    /// The platform asked for (`--platform`, STACKPROOF_PLATFORM), if any.
    pub(crate) fn asked_platform(&self) -> Option<&str> {
        self.platform.as_deref()
    }

    /// Every platform's name, as the platforms file lists them.
    pub fn platform_names(&self) -> Result<Vec<String>> {
        let (path, text) = self.read(crate::platform::PLATFORMS_FILE)?;
        crate::platform::Platform::names(&text, &path)
    }

    /// Adds a folder on top: its files replace those of the layers below.
    pub fn with_overlay(mut self, dir: PathBuf) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::InvalidFixture {
                path: dir,
                detail:
                    "not a folder: --fixtures and STACKPROOF_FIXTURES take a folder laid out like \
                         the repository's fixtures/ (only the files you replace)"
                        .into(),
            });
        }
        self.layers.push(dir);
        Ok(self)
    }

    /// Lays the user's own files (`--config`, mapped onto the run) on top,
    /// remembered as theirs: a claim that would replace them says so.
    pub fn with_users_files(mut self, dir: PathBuf) -> Result<Self> {
        self.users = Some(dir.clone());
        self.with_overlay(dir)
    }

    /// The user's own files, as fixture paths (`services/haproxy/haproxy.cfg`,
    /// `hosts/lb-1/services/keepalived/keepalived.conf`): what a running
    /// stack of the design must take to become theirs (see `Stack::in_place`).
    pub fn users_files(&self) -> Result<Vec<String>> {
        let Some(users) = &self.users else {
            return Ok(Vec::new());
        };
        let mut theirs = BTreeMap::new();
        collect(users, users, &mut theirs)?;
        Ok(theirs
            .keys()
            .map(|rel| rel.to_string_lossy().into_owned())
            .collect())
    }

    /// The user's own files (fixture paths, a host's own file as the shared
    /// path it stands for) that variant `name` replaces:
    /// a claim measuring the variant then measures the design's files, not
    /// theirs. A file for one host (`hosts/<host>/<rel>`) counts as `<rel>`.
    pub fn users_files_replaced_by(&self, variant: &str) -> Vec<PathBuf> {
        let Some(users) = &self.users else {
            return Vec::new();
        };
        let mut theirs = BTreeMap::new();
        let mut replacing = BTreeMap::new();
        let _ = collect(users, users, &mut theirs);
        for layer in &self.layers {
            let root = layer.join("variants").join(variant);
            if root.is_dir() {
                let _ = collect(&root, &root, &mut replacing);
            }
        }
        let plain = |rel: &Path| -> PathBuf {
            match rel.strip_prefix("hosts") {
                Ok(rest) => rest.components().skip(1).collect(),
                Err(_) => rel.to_path_buf(),
            }
        };
        let mut replaced: Vec<PathBuf> = theirs
            .keys()
            .map(|rel| plain(rel))
            .filter(|rel| replacing.keys().any(|v| plain(v) == *rel))
            .collect();
        replaced.dedup();
        replaced
    }

    /// Adds a temporary folder on top that lives as long as these fixtures.
    pub(crate) fn with_owned_overlay(
        mut self,
        dir: PathBuf,
        guard: std::sync::Arc<crate::tempdir::TempDir>,
    ) -> Result<Self> {
        self.owned.push(guard);
        self.with_overlay(dir)
    }

    /// Lays variant `name` on top: each layer's `variants/<name>/` folder,
    /// in layer order, so a user's or a mutant's copy of a variant file wins.
    pub fn with_variant(mut self, name: &str) -> Result<Self> {
        let found: Vec<PathBuf> = self
            .layers
            .iter()
            .map(|l| l.join("variants").join(name))
            .filter(|d| d.is_dir())
            .collect();
        if found.is_empty() {
            return Err(Error::Fixture {
                path: self.layers[0].join("variants").join(name),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such variant in any fixture layer",
                ),
            });
        }
        self.layers.extend(found);
        Ok(self)
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    /// The file that wins for `rel`, searching from the top layer down.
    pub fn path(&self, rel: &str) -> Result<PathBuf> {
        self.layers
            .iter()
            .rev()
            .map(|l| l.join(rel))
            .find(|p| p.exists())
            .ok_or_else(|| Error::Fixture {
                path: self.layers[0].join(rel),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "in no fixture layer"),
            })
    }

    /// The file that wins for `rel` on one host: in each layer from the top
    /// down, `hosts/<host>/<rel>` (a file for that host alone, such as the
    /// second keepalived peer's) before `rel`.
    pub fn path_for(&self, host: &str, rel: &str) -> Result<PathBuf> {
        let own = format!("hosts/{host}/{rel}");
        self.layers
            .iter()
            .rev()
            .flat_map(|l| [l.join(&own), l.join(rel)])
            .find(|p| p.exists())
            .ok_or_else(|| Error::Fixture {
                path: self.layers[0].join(rel),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "in no fixture layer"),
            })
    }

    /// Reads `rel` as text, returning where it came from too.
    pub fn read(&self, rel: &str) -> Result<(PathBuf, String)> {
        let path = self.path(rel)?;
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Fixture {
            path: path.clone(),
            source,
        })?;
        Ok((path, text))
    }

    /// Every file under the folder `rel` (merged over all layers), as
    /// (relative path inside `rel`, winning file).
    pub fn walk(&self, rel: &str) -> Result<BTreeMap<PathBuf, PathBuf>> {
        let mut out = BTreeMap::new();
        for layer in &self.layers {
            let root = layer.join(rel);
            if root.is_dir() {
                collect(&root, &root, &mut out)?;
            }
        }
        if out.is_empty() {
            return Err(Error::Fixture {
                path: self.layers[0].join(rel),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no files in any fixture layer",
                ),
            });
        }
        Ok(out)
    }
}

/// The repository's `fixtures/`, compiled into the binary.
static EMBEDDED: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/fixtures");

/// Unpacks the embedded fixtures into `<cache>/stackproof/fixtures-<hash>`
/// (once per content: a folder that exists is complete, since it is
/// renamed into place only when fully written).
fn unpack_embedded() -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    fn walk<'a>(d: &'a include_dir::Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
        out.extend(d.files());
        for sub in d.dirs() {
            walk(sub, out);
        }
    }
    walk(&EMBEDDED, &mut files);
    files.sort_by_key(|f| f.path());
    let mut hasher = Sha256::new();
    for f in &files {
        hasher.update(f.path().to_string_lossy().as_bytes());
        hasher.update(f.contents());
    }
    let hash: String = hasher.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("stackproof");
    let dir = cache.join(format!("fixtures-{hash}"));
    if dir.is_dir() {
        return Ok(dir);
    }
    let partial = cache.join(format!("fixtures-{hash}.{}", std::process::id()));
    let io = |what: &str, p: &Path| {
        Error::io(format!(
            "{what} `{}` (unpacking the built-in fixtures)",
            p.display()
        ))
    };
    for f in &files {
        let target = partial.join(f.path());
        std::fs::create_dir_all(target.parent().expect("a file in a folder"))
            .map_err(io("create", &target))?;
        std::fs::write(&target, f.contents()).map_err(io("write", &target))?;
    }
    // Another process may have won the race: its copy is as good as ours.
    if std::fs::rename(&partial, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    Ok(dir)
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Fixture {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Fixture {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(root)
                .expect("walked below root")
                .to_path_buf();
            out.insert(rel, path);
        }
    }
    Ok(())
}

/// Fills `{{ name }}` placeholders from `vars`. An unknown name is an error
/// naming the file and the names that exist, never an empty string.
/// The names of the placeholders in `text` (`{{ name }}`), in order.
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split("{{")
        .skip(1)
        .filter_map(|after| after.split_once("}}").map(|(name, _)| name.trim()))
}

pub fn render(text: &str, vars: &BTreeMap<String, String>, file: &Path) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| Error::InvalidFixture {
            path: file.to_path_buf(),
            detail: "a `{{` is never closed with `}}`".into(),
        })?;
        let name = after[..end].trim();
        let value = vars.get(name).ok_or_else(|| Error::InvalidFixture {
            path: file.to_path_buf(),
            detail: format!(
                "unknown placeholder `{{{{ {name} }}}}`; known: {}",
                vars.keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_named_in_order_and_unclosed_ones_skipped() {
        let names: Vec<&str> =
            placeholders("a {{ x }} b {{y}} c {{ self.public.iface }} d {{ open").collect();
        assert_eq!(names, ["x", "y", "self.public.iface"]);
    }

    #[test]
    fn render_fills_placeholders_and_names_unknown_ones() {
        let vars = BTreeMap::from([("server-1.public".to_string(), "10.0.0.10".to_string())]);
        let f = Path::new("x.conf");
        assert_eq!(
            render("a {{ server-1.public }} b {{server-1.public}}", &vars, f).unwrap(),
            "a 10.0.0.10 b 10.0.0.10"
        );
        let err = render("{{ nope }}", &vars, f).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("server-1.public") && err.contains("x.conf"),
            "{err}"
        );
        assert!(render("{{ open", &vars, f).is_err());
    }

    #[test]
    fn top_layer_wins_and_walk_merges() {
        let base = std::env::temp_dir().join(format!(
            "sp-fx-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(a.join("app")).unwrap();
        std::fs::create_dir_all(b.join("app")).unwrap();
        std::fs::write(a.join("app/one"), "a1").unwrap();
        std::fs::write(a.join("app/two"), "a2").unwrap();
        std::fs::write(b.join("app/two"), "b2").unwrap();
        let f = Fixtures {
            layers: vec![a.clone()],
            owned: Vec::new(),
            users: None,
            platform: None,
        }
        .with_overlay(b.clone())
        .unwrap();
        assert_eq!(f.read("app/two").unwrap().1, "b2");
        assert_eq!(f.read("app/one").unwrap().1, "a1");
        let walked = f.walk("app").unwrap();
        assert_eq!(walked.len(), 2);
        assert_eq!(walked[Path::new("two")], b.join("app/two"));
        assert!(f.read("app/three").is_err());
        // A host's own file wins over the shared one of its layer and below,
        // not over a shared one of a higher layer.
        std::fs::create_dir_all(a.join("hosts/h2/app")).unwrap();
        std::fs::write(a.join("hosts/h2/app/one"), "h2").unwrap();
        std::fs::write(a.join("hosts/h2/app/two"), "h2").unwrap();
        assert_eq!(
            f.path_for("h2", "app/one").unwrap(),
            a.join("hosts/h2/app/one")
        );
        assert_eq!(f.path_for("h1", "app/one").unwrap(), a.join("app/one"));
        assert_eq!(f.path_for("h2", "app/two").unwrap(), b.join("app/two"));
        assert!(
            Fixtures {
                layers: vec![a.clone()],
                owned: Vec::new(),
                users: None,
                platform: None,
            }
            .with_overlay(base.join("missing"))
            .is_err()
        );
        // A variant that replaces a file of the user's own (here one for a
        // single host) is told apart from one that replaces only the design's.
        let users = base.join("users");
        std::fs::create_dir_all(users.join("hosts/h1/app")).unwrap();
        std::fs::write(users.join("hosts/h1/app/two"), "mine").unwrap();
        std::fs::create_dir_all(a.join("variants/fix/app")).unwrap();
        std::fs::write(a.join("variants/fix/app/two"), "fixed").unwrap();
        let theirs = f.clone().with_users_files(users).unwrap();
        assert_eq!(
            theirs.users_files_replaced_by("fix"),
            vec![PathBuf::from("app/two")]
        );
        assert!(f.users_files_replaced_by("fix").is_empty());
        std::fs::remove_dir_all(base).unwrap();
    }
}
