//! Install scripts as input: a student's Bash script that installs a server
//! and writes its configuration (`apt-get install haproxy`, a heredoc into
//! `/etc/haproxy/haproxy.cfg`, `service haproxy restart`) runs inside a
//! throwaway host of the run's image, which already has the package, on no
//! network at all. Package and service commands are made harmless and
//! reported; the files it wrote are then checked as `--config` files are.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::docker::{self, RunGuard, RunId};
use crate::error::{Error, Result};
use crate::host::Host;

/// Commands a script may call that must do nothing here, and what is said of each.
const SHIMS: &[(&str, &str)] = &[
    ("apt-get", "skipped: the package is in the run's image"),
    ("apt", "skipped: the package is in the run's image"),
    ("add-apt-repository", "skipped: the run's image is fixed"),
    (
        "service",
        "skipped: stackproof starts the server itself, with the file the script wrote",
    ),
    (
        "systemctl",
        "skipped: stackproof starts the server itself, with the file the script wrote",
    ),
    (
        "ufw",
        "not run: a design's firewall is its own iptables service",
    ),
    ("certbot", "not run: the run's CA issues the certificate"),
];

/// What running a script gave.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    /// The configuration file it left, copied out.
    pub config: PathBuf,
    /// One line per harmless command and per file read, for the report.
    pub report: Vec<String>,
    /// Where the script wrote it on the host (`/etc/haproxy/haproxy.cfg`).
    pub target: String,
}

/// Runs `script` for server `kind` in a throwaway host of `image` and
/// copies the configuration it wrote into `scratch`.
pub async fn run(script: &Path, kind: &str, image: &str, scratch: &Path) -> Result<ScriptRun> {
    let target = super::registry::server(kind)
        .and_then(|s| s.script_writes)
        .ok_or_else(|| Error::InvalidFixture {
            path: script.to_path_buf(),
            detail: if kind == "iptables" {
                "a firewall script is read as it is: give it with --config iptables=PATH (its iptables and ufw commands become the rules)".into()
            } else {
                format!("--script does not know where `{kind}` keeps its configuration")
            },
        })?;
    let text = super::read_users_file(script, "install script")?.into_bytes();
    let docker = docker::connect().await?;
    crate::reaper::ensure(&docker, image).await;
    let run = RunId::new();
    let _guard = RunGuard::new(&run);
    let host = Host::create_isolated(&docker, &run, image, "script").await?;
    let mut files = vec![("/tmp/stackproof/install.sh".to_string(), text, 0o755)];
    for (cmd, said) in SHIMS {
        files.push((
            format!("/usr/local/sbin/{cmd}"),
            format!("#!/bin/sh\necho \"{cmd} $*: {said}\" >> /tmp/stackproof/shims.log\nexit 0\n")
                .into_bytes(),
            0o755,
        ));
    }
    // `sudo cmd` runs cmd: the script already runs as root here.
    files.push((
        "/usr/local/sbin/sudo".to_string(),
        b"#!/bin/sh\nwhile [ $# -gt 0 ] && [ \"${1#-}\" != \"$1\" ]; do\n  case \"$1\" in -u|-g) shift ;; esac\n  shift\ndone\nexec \"$@\"\n".to_vec(),
        0o755,
    ));
    host.put_files(&files).await?;
    // The sites a fresh install of the package enables (the run's image
    // leaves them out: a design's services bring their own).
    host.run(
        "ln -sfn /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default 2>/dev/null; \
         ln -sfn ../sites-available/000-default.conf /etc/apache2/sites-enabled/000-default.conf 2>/dev/null; true",
    )
    .await?;
    // Each file the glob names (links followed), with its checksum.
    let sums = format!(
        "for f in {target}; do [ -f \"$f\" ] && echo \"$(md5sum < \"$f\" | cut -c1-32) $f\"; done; true"
    );
    let before = host.run(&sums).await?;
    let out = host
        .exec_within(
            "cd /tmp/stackproof && bash ./install.sh </dev/null",
            Duration::from_secs(120),
        )
        .await?;
    let shims = host
        .run("cat /tmp/stackproof/shims.log 2>/dev/null || true")
        .await?;
    let after = host.run(&sums).await?;
    let name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "script".into());
    let mut report = vec![format!(
        "{name}: ran in a throwaway host with no network, exit {}",
        out.code
    )];
    report.extend(shims.lines().map(|l| format!("{name}: {l}")));
    if out.code != 0 {
        let combined = out.combined();
        let lines: Vec<&str> = combined.lines().collect();
        let tail = &lines[lines.len().saturating_sub(5)..];
        report.push(format!(
            "{name}: warning: the script failed (exit {}); its last lines: {}",
            out.code,
            tail.join(" / ")
        ));
    }
    let files_after: Vec<(&str, &str)> = after.lines().filter_map(|l| l.split_once(' ')).collect();
    let mut changed: Vec<&str> = files_after
        .iter()
        .filter(|(sum, path)| !before.lines().any(|l| l == format!("{sum} {path}")))
        .map(|(_, path)| *path)
        .collect();
    // An nginx.conf with no site of its own that includes the enabled
    // sites is not a whole configuration: the site is checked, and its own
    // edits are said to be left out (a whole nginx.conf is checked).
    const NGINX_CONF: &str = "/etc/nginx/nginx.conf";
    if kind == "nginx"
        && changed.contains(&NGINX_CONF)
        && super::nginx::sites_line(&host.run(&format!("cat {NGINX_CONF}")).await?).is_some()
    {
        changed.retain(|f| *f != NGINX_CONF);
        report.push(format!(
            "{name}: warning: the script changed {NGINX_CONF}, which includes the enabled sites: the site is checked, and the run's nginx.conf is used instead of the one it changed"
        ));
    }
    let target = match (changed.as_slice(), files_after.first()) {
        ([], None) => {
            return Err(Error::InvalidFixture {
                path: script.to_path_buf(),
                detail: format!("the script left no {target}: nothing to check"),
            });
        }
        ([], Some((_, first))) => {
            report.push(format!(
                "{name}: warning: the script did not change {first} (the package's default is checked)"
            ));
            first.to_string()
        }
        ([one], _) => {
            report.push(format!("{name}: wrote {one}"));
            one.to_string()
        }
        ([one, others @ ..], _) => {
            report.push(format!(
                "{name}: warning: the script changed {} files the server loads; {one} is checked, not {}",
                changed.len(),
                others.join(", ")
            ));
            one.to_string()
        }
    };
    let config = host.run(&format!("cat '{target}'")).await?;
    let dir = scratch.join(format!("script-{}", name.replace('/', "_")));
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("create `{}`", dir.display())))?;
    let file = dir.join(Path::new(&target).file_name().expect("a file name"));
    std::fs::write(&file, config).map_err(Error::io(format!("write `{}`", file.display())))?;
    host.remove().await?;
    Ok(ScriptRun {
        config: file,
        report,
        target,
    })
}
