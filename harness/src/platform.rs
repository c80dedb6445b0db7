//! A platform: the Debian release a design's servers run on. Each is an
//! entry of `fixtures/images/server/platforms.toml`: the suite mmdebstrap
//! installs, the base image a Dockerfile build starts from, and the names
//! that differ between releases (PHP's version in its package, binary and
//! paths), which fixtures use as `{{ platform.<name> }}`. The servers'
//! versions are read from the running image, never written down.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The platforms file, a fixture path.
pub const PLATFORMS_FILE: &str = "images/server/platforms.toml";

/// The environment variable that picks the platform for `cargo test`
/// (and for any run without `--platform`), over design.toml's setting.
pub const PLATFORM_ENV: &str = "STACKPROOF_PLATFORM";

/// One platform, as the platforms file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Its name (`debian-13`), as `--platform` and design.toml write it.
    name: String,
    /// What it is, for people (`Debian 13 (trixie)`).
    release: String,
    /// The Debian suite mmdebstrap installs (`trixie`).
    suite: String,
    /// The Debian image a Dockerfile build starts from, when the engine has it.
    base_image: String,
    /// The names that differ between releases (`php` = `8.4`).
    vars: BTreeMap<String, String>,
}

impl Platform {
    /// The platform named `asked` (the default one when `None`) in the
    /// platforms file's text; `path` names the file in errors.
    pub(crate) fn from_file(text: &str, path: &Path, asked: Option<&str>) -> Result<Platform> {
        let invalid = |detail: String| Error::InvalidFixture {
            path: path.to_path_buf(),
            detail,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let platforms = table
            .get("platform")
            .and_then(toml::Value::as_table)
            .ok_or_else(|| invalid("no [platform.<name>] tables".into()))?;
        let name = match asked {
            Some(name) => name.to_string(),
            None => table
                .get("default")
                .and_then(toml::Value::as_str)
                .ok_or_else(|| invalid("no `default = \"<platform>\"`".into()))?
                .to_string(),
        };
        let Some(entry) = platforms.get(&name).and_then(toml::Value::as_table) else {
            return Err(Error::Unknown {
                kind: "platform",
                name,
                known: platforms.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        let mut vars = BTreeMap::new();
        for (key, value) in entry {
            let Some(value) = value.as_str() else {
                return Err(invalid(format!(
                    "[platform.{name}] `{key}` is not a string"
                )));
            };
            vars.insert(key.clone(), value.to_string());
        }
        let mut take = |key: &str| {
            vars.remove(key)
                .ok_or_else(|| invalid(format!("[platform.{name}] has no `{key}`")))
        };
        Ok(Platform {
            release: take("release")?,
            suite: take("suite")?,
            base_image: take("base_image")?,
            name,
            vars,
        })
    }

    /// The names of every platform in the platforms file's text.
    pub(crate) fn names(text: &str, path: &Path) -> Result<Vec<String>> {
        let table: toml::Table = toml::from_str(text).map_err(|e| Error::InvalidFixture {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Ok(table
            .get("platform")
            .and_then(toml::Value::as_table)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Its name (`debian-13`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it is, for people (`Debian 13 (trixie)`).
    pub fn release(&self) -> &str {
        &self.release
    }

    /// One of its facts from platforms.toml (`php`), as written there.
    pub(crate) fn fact(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The Debian suite mmdebstrap installs (`trixie`).
    pub(crate) fn suite(&self) -> &str {
        &self.suite
    }

    /// The Debian image a Dockerfile build starts from.
    pub(crate) fn base_image(&self) -> &str {
        &self.base_image
    }

    /// Its names as template variables: `platform.name`, `platform.suite`
    /// and each differing name (`platform.php`).
    pub(crate) fn template_vars(&self) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = self
            .vars
            .iter()
            .map(|(k, v)| (format!("platform.{k}"), v.clone()))
            .collect();
        vars.insert("platform.name".into(), self.name.clone());
        vars.insert("platform.suite".into(), self.suite.clone());
        vars
    }

    /// `text` with its `{{ platform.<name> }}` placeholders filled and
    /// every other `{{ }}` left as it is (a service file's commands may
    /// hold another program's templates, as Prometheus's rules do).
    pub(crate) fn fill(&self, text: &str) -> String {
        let vars = self.template_vars();
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let filled = after.find("}}").and_then(|end| {
                vars.get(after[..end].trim())
                    .map(|v| (v, start + 2 + end + 2))
            });
            match filled {
                Some((value, next)) => {
                    out.push_str(&rest[..start]);
                    out.push_str(value);
                    rest = &rest[next..];
                }
                None => {
                    out.push_str(&rest[..start + 2]);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The first line of `text` that names another release's PHP (a
    /// `/etc/php/8.2/` path or a `php8.2-fpm` binary on a platform with
    /// PHP 8.4): its number and what it names.
    pub(crate) fn other_release_named(&self, text: &str) -> Option<(usize, String)> {
        let ours = self.vars.get("php")?;
        for (i, line) in text.lines().enumerate() {
            for marker in ["/etc/php/", "php-fpm", "php"] {
                for (at, _) in line.match_indices(marker) {
                    let version: String = line[at + marker.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.')
                        .collect();
                    let version = version.trim_end_matches('.');
                    if version.contains('.') && version != ours {
                        return Some((i + 1, format!("{marker}{version}")));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "default = \"debian-13\"\n\
        [platform.debian-13]\nrelease = \"Debian 13\"\nsuite = \"trixie\"\nbase_image = \"debian:trixie-slim\"\nphp = \"8.4\"\n\
        [platform.debian-12]\nrelease = \"Debian 12\"\nsuite = \"bookworm\"\nbase_image = \"debian:bookworm-slim\"\nphp = \"8.2\"\n";

    #[test]
    fn the_default_or_the_asked_platform_with_its_names() {
        let path = Path::new("platforms.toml");
        let default = Platform::from_file(FILE, path, None).unwrap();
        assert_eq!((default.name(), default.suite()), ("debian-13", "trixie"));
        let old = Platform::from_file(FILE, path, Some("debian-12")).unwrap();
        assert_eq!(
            old.fill("php{{ platform.php }}-fpm {{platform.suite}} {{ $labels }} {{ x"),
            "php8.2-fpm bookworm {{ $labels }} {{ x"
        );
        let e = Platform::from_file(FILE, path, Some("debian-11"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("debian-11") && e.contains("debian-12, debian-13"),
            "{e}"
        );
    }

    #[test]
    fn another_releases_php_is_found_on_its_line() {
        let p = Platform::from_file(FILE, Path::new("p"), None).unwrap();
        let text = "name = \"php-fpm\"\nstart = \"php-fpm8.4 -y /etc/php/8.4/fpm/php-fpm.conf\"\n\
                    files = [{ target = \"/etc/php/8.2/fpm/pool.d/www.conf\" }]\n";
        assert_eq!(
            p.other_release_named(text),
            Some((3, "/etc/php/8.2".into()))
        );
        assert_eq!(p.other_release_named("php-fpm8.4 -t\nphp -v\n"), None);
    }
}
