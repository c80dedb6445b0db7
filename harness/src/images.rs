//! Images, built here from Debian 12 packages: no registry is needed.
//!
//! Two layers. The base is `debian:bookworm-slim` when the engine has it or
//! can pull it; otherwise we bootstrap `stackproof/base:bookworm` ourselves
//! with `mmdebstrap --variant=minbase bookworm` and import it. On top, the
//! server image is built from the recipe in `fixtures/images/server/`
//! (a Dockerfile that installs every service's package), tagged with a hash
//! of the recipe and the base, and reused whenever that tag exists: a warm run
//! builds nothing.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use testcontainers::bollard::Docker;
use testcontainers::bollard::body_full;
use testcontainers::bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder,
};

use crate::error::{Error, Result};
use crate::fixtures::Fixtures;

/// The Debian image we prefer as a base.
pub const DEBIAN_SLIM: &str = "debian:bookworm-slim";
/// The base we bootstrap when the engine has no Debian image and cannot pull one.
pub const BOOTSTRAPPED_BASE: &str = "stackproof/base:bookworm";
/// The fixture folder holding the server image's recipe.
pub const SERVER_RECIPE: &str = "images/server";
/// How long a pull may try before we conclude no registry is reachable.
/// A reachable registry answers within seconds; an unreachable one fails
/// at DNS or connect, so this only bounds a hanging proxy.
const PULL_DEADLINE: Duration = Duration::from_secs(20);

/// Where build progress goes: a spinner on a terminal, plain lines otherwise (CI logs).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    /// Packages apt-get said it installs, and how many are set up so far.
    packages: std::cell::Cell<(u64, u64)>,
}

impl Progress {
    fn new(what: &str) -> Self {
        let started = Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed}] {prefix}: {wide_msg}",
                )
                .expect("static template"),
            );
            bar.set_prefix(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            Progress {
                bar: Some(bar),
                started,
                packages: Default::default(),
            }
        } else {
            eprintln!("stackproof: {what}");
            Progress {
                bar: None,
                started,
                packages: Default::default(),
            }
        }
    }

    fn step(&self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        // apt-get's own count ("250 newly installed"), then one "Setting up <pkg>" each.
        if let Some(n) = line
            .split(" newly installed")
            .next()
            .filter(|_| line.contains(" newly installed"))
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            self.packages.set((n, 0));
            if let Some(bar) = &self.bar {
                bar.set_length(n);
                bar.set_position(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "[{elapsed}] {prefix}: [{bar:30}] {pos}/{len} packages, {wide_msg}",
                    )
                    .expect("static template")
                    .progress_chars("=> "),
                );
            }
        }
        if let Some(pkg) = line.strip_prefix("Setting up ") {
            let (total, done) = self.packages.get();
            let done = done + 1;
            self.packages.set((total, done));
            let pkg = pkg.split(' ').next().unwrap_or(pkg);
            match &self.bar {
                Some(bar) => {
                    bar.set_position(done);
                    bar.set_message(format!("setting up {pkg}"));
                }
                // On CI, a line at every tenth of the packages.
                None if total > 0 && (done * 10 / total) != ((done - 1) * 10 / total) => eprintln!(
                    "stackproof:   [{:>3}s] {done}/{total} packages set up ({pkg})",
                    self.started.elapsed().as_secs()
                ),
                None => {}
            }
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            // On CI, only the builder's step lines: enough to see where it is.
            None if line.starts_with("Step ") => {
                eprintln!(
                    "stackproof:   [{:>3}s] {line}",
                    self.started.elapsed().as_secs()
                )
            }
            None => {}
        }
    }

    fn done(self, what: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        match self.bar {
            Some(bar) => bar.finish_with_message(format!("{what} in {secs:.1} s")),
            None => eprintln!("stackproof: {what} in {secs:.1} s"),
        }
    }
}

/// What [`ensure_server_image`] did, for the benchmark and the checklist.
#[derive(Debug, Clone)]
pub struct ImageReport {
    /// The server image tag.
    pub tag: String,
    /// The base it was built on.
    pub base: String,
    /// Whether anything was built (false on a warm run).
    pub built: bool,
    /// Time spent.
    pub elapsed: Duration,
}

/// Makes sure the server image for the current recipe exists, building it
/// (and the base, if needed) when it does not.
pub async fn ensure_server_image(docker: &Docker, fixtures: &Fixtures) -> Result<ImageReport> {
    let started = Instant::now();
    let recipe = fixtures.walk(SERVER_RECIPE)?;
    let base = ensure_base(docker).await?;
    let base_id = docker
        .inspect_image(&base)
        .await
        .map_err(Error::docker(format!("inspect base image `{base}`")))?
        .id
        .unwrap_or_default();

    let mut hasher = Sha256::new();
    hasher.update(base_id.as_bytes());
    let mut context = tar::Builder::new(Vec::new());
    for (rel, path) in &recipe {
        let bytes = std::fs::read(path).map_err(|source| Error::Fixture {
            path: path.clone(),
            source,
        })?;
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(&bytes);
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        context
            .append_data(&mut header, rel, bytes.as_slice())
            .map_err(Error::io("pack the image recipe"))?;
    }
    let digest = hasher.finalize();
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let tag = format!("stackproof/server:{hash}");

    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(ImageReport {
            tag,
            base,
            built: false,
            elapsed: started.elapsed(),
        });
    }
    let context = context
        .into_inner()
        .map_err(Error::io("pack the image recipe"))?;
    let progress = Progress::new(&format!(
        "building `{tag}` on `{base}` (about a minute, once)"
    ));
    let opts = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(&tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&HashMap::from([("BASE", base.as_str())]))
        .labels(&HashMap::from([("stackproof.recipe", hash.as_str())]))
        .build();
    let mut stream = docker.build_image(opts, None, Some(body_full(context.into())));
    let mut tail: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| Error::ImageBuild {
            image: tag.clone(),
            detail: format!("{e}\n{}", tail.join("")),
        })?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::ImageBuild {
                image: tag,
                detail: format!("{err}\nlast lines:\n{}", tail.join("")),
            });
        }
        if let Some(line) = info.stream {
            progress.step(&line);
            tail.push(line);
            if tail.len() > 30 {
                tail.remove(0);
            }
        }
    }
    if docker.inspect_image(&tag).await.is_err() {
        return Err(Error::ImageBuild {
            image: tag,
            detail: format!("the builder ended without an image:\n{}", tail.join("")),
        });
    }
    progress.done(&format!("built `{tag}`"));
    Ok(ImageReport {
        tag,
        base,
        built: true,
        elapsed: started.elapsed(),
    })
}

/// Picks or makes the base image: STACKPROOF_BASE_IMAGE, then
/// `debian:bookworm-slim` (present or pullable), then our bootstrapped one.
pub async fn ensure_base(docker: &Docker) -> Result<String> {
    if let Ok(base) = std::env::var("STACKPROOF_BASE_IMAGE") {
        docker
            .inspect_image(&base)
            .await
            .map_err(Error::docker(format!(
                "find STACKPROOF_BASE_IMAGE `{base}` in the engine (load or build it first)"
            )))?;
        return Ok(base);
    }
    for image in [DEBIAN_SLIM, BOOTSTRAPPED_BASE] {
        if docker.inspect_image(image).await.is_ok() {
            return Ok(image.to_string());
        }
    }
    if try_pull(docker, DEBIAN_SLIM).await {
        return Ok(DEBIAN_SLIM.to_string());
    }
    bootstrap_base(docker).await?;
    Ok(BOOTSTRAPPED_BASE.to_string())
}

async fn try_pull(docker: &Docker, image: &str) -> bool {
    let opts = CreateImageOptionsBuilder::new().from_image(image).build();
    let pull = async {
        let mut stream = docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            if item.is_err() {
                return false;
            }
        }
        true
    };
    let pulled = tokio::time::timeout(PULL_DEADLINE, pull)
        .await
        .unwrap_or(false);
    pulled && docker.inspect_image(image).await.is_ok()
}

/// `mmdebstrap --variant=minbase bookworm` into a tarball, imported as the base.
async fn bootstrap_base(docker: &Docker) -> Result<()> {
    if !has_mmdebstrap() {
        install_mmdebstrap().await?;
    }
    let progress = Progress::new(
        "no registry: bootstrapping a Debian 12 base with mmdebstrap (about 20 s, once)",
    );
    let tarball = std::env::temp_dir().join(format!("stackproof-base-{}.tar", std::process::id()));
    let out = tokio::process::Command::new("mmdebstrap")
        .args(["--variant=minbase", "--quiet", "bookworm"])
        .arg(&tarball)
        .output()
        .await
        .map_err(Error::io("run mmdebstrap"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tarball);
        return Err(Error::ImageBuild {
            image: BOOTSTRAPPED_BASE.into(),
            detail: format!(
                "mmdebstrap failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
        });
    }
    progress.step("importing the root file system");
    let bytes = std::fs::read(&tarball).map_err(Error::io(format!("read `{}`", tarball.display())));
    let _ = std::fs::remove_file(&tarball);
    let bytes = bytes?;
    let (repo, tag) = BOOTSTRAPPED_BASE.split_once(':').expect("repo:tag");
    let opts = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .build();
    let mut stream = docker.create_image(Some(opts), Some(body_full(bytes.into())), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| Error::ImageBuild {
            image: BOOTSTRAPPED_BASE.into(),
            detail: e.to_string(),
        })?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(Error::ImageBuild {
                image: BOOTSTRAPPED_BASE.into(),
                detail: err,
            });
        }
    }
    progress.done(&format!("bootstrapped `{BOOTSTRAPPED_BASE}`"));
    Ok(())
}

fn has_mmdebstrap() -> bool {
    matches!(
        std::process::Command::new("mmdebstrap").arg("--version").output(),
        Ok(o) if o.status.success()
    )
}

/// How packages can be installed here: as root directly, with passwordless
/// sudo, or not at all (`None`).
fn package_installer() -> Option<Vec<&'static str>> {
    use std::os::unix::fs::MetadataExt;
    let apt = std::process::Command::new("apt-get")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !apt {
        return None;
    }
    // The owner of /proc/self is this process's effective user.
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return Some(vec![]);
    }
    let sudo = std::process::Command::new("sudo")
        .args(["-n", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    sudo.then(|| vec!["sudo", "-n"])
}

/// Installs mmdebstrap with apt-get when this process may (root or
/// passwordless sudo), saying so in one line; otherwise the error gives the
/// exact command. Needed once, on a machine whose engine has no Debian image.
async fn install_mmdebstrap() -> Result<()> {
    let Some(prefix) = package_installer() else {
        return Err(Error::NoBootstrapTool);
    };
    let progress = Progress::new(&format!(
        "no registry and no Debian image: installing `mmdebstrap` with apt-get{} to bootstrap \
         the Debian 12 base (once)",
        if prefix.is_empty() { "" } else { " (sudo)" }
    ));
    for args in [
        &["apt-get", "update", "-qq"][..],
        &["apt-get", "install", "-y", "-qq", "mmdebstrap"][..],
    ] {
        progress.step(&args.join(" "));
        let mut cmd = tokio::process::Command::new(prefix.first().copied().unwrap_or(args[0]));
        cmd.args(prefix.iter().skip(1))
            .args(if prefix.is_empty() { &args[1..] } else { args })
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null());
        let out = cmd.output().await.map_err(Error::io("run apt-get"))?;
        if !out.status.success() {
            return Err(Error::ImageBuild {
                image: BOOTSTRAPPED_BASE.into(),
                detail: format!(
                    "`{}` failed (install mmdebstrap yourself, or set STACKPROOF_BASE_IMAGE):\n{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
    }
    if !has_mmdebstrap() {
        return Err(Error::NoBootstrapTool);
    }
    progress.done("installed mmdebstrap");
    Ok(())
}

/// Removes the server images and the bootstrapped base (`stackproof bench --cold`).
pub async fn remove_images(docker: &Docker) -> Result<()> {
    use testcontainers::bollard::query_parameters::{
        ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
    };
    let filter = HashMap::from([("reference", vec!["stackproof/*"])]);
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(Error::docker("list stackproof images"))?;
    for image in images {
        let opts = RemoveImageOptionsBuilder::new().force(true).build();
        docker
            .remove_image(&image.id, Some(opts), None)
            .await
            .map_err(Error::docker(format!("remove image `{}`", image.id)))?;
    }
    Ok(())
}

/// The file `stackproof images --save` writes for the current recipe.
fn saved_file(dir: &std::path::Path, tag: &str) -> std::path::PathBuf {
    dir.join(format!("{}.tar", tag.replace(['/', ':'], "-")))
}

/// Saves the current server image and its base into `dir` (one tar, as
/// `docker save` writes it), for a CI cache; returns the file and its size.
pub async fn save(
    docker: &Docker,
    fixtures: &Fixtures,
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, u64)> {
    use tokio::io::AsyncWriteExt;
    let image = ensure_server_image(docker, fixtures).await?;
    std::fs::create_dir_all(dir).map_err(Error::io(format!("create `{}`", dir.display())))?;
    let path = saved_file(dir, &image.tag);
    let partial = path.with_extension("tar.partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(Error::io(format!("create `{}`", partial.display())))?;
    let progress = Progress::new(&format!(
        "saving `{}` and `{}` to `{}`",
        image.tag,
        image.base,
        path.display()
    ));
    let mut stream = docker.export_images(&[image.tag.as_str(), image.base.as_str()]);
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Error::docker(format!("save image `{}`", image.tag)))?;
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(Error::io(format!("write `{}`", partial.display())))?;
    }
    file.flush()
        .await
        .map_err(Error::io(format!("write `{}`", partial.display())))?;
    std::fs::rename(&partial, &path)
        .map_err(Error::io(format!("rename to `{}`", path.display())))?;
    progress.done(&format!("saved {:.0} MiB", size as f64 / 1048576.0));
    Ok((path, size))
}

/// Loads every `*.tar` that `save` wrote into `dir` (a CI cache), so the
/// next check finds its image and builds nothing. Returns the files loaded.
pub async fn load(docker: &Docker, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    use testcontainers::bollard::query_parameters::ImportImageOptionsBuilder;
    let entries = std::fs::read_dir(dir).map_err(Error::io(format!("read `{}`", dir.display())))?;
    let mut loaded = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "tar") {
            continue;
        }
        let progress = Progress::new(&format!("loading `{}`", path.display()));
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(Error::io(format!("open `{}`", path.display())))?;
        let opts = ImportImageOptionsBuilder::new().quiet(true).build();
        let mut stream =
            docker.import_image_stream(opts, tokio_util::io::ReaderStream::new(file), None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(Error::docker(format!("load `{}`", path.display())))?;
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Err(Error::ImageBuild {
                    image: path.display().to_string(),
                    detail: err,
                });
            }
        }
        progress.done(&format!("loaded `{}`", path.display()));
        loaded.push(path);
    }
    Ok(loaded)
}

/// Removes server images of older recipes (each is about 1 GB); keeps the
/// current one and any image a container still uses. Returns the tags removed.
pub async fn prune(docker: &Docker, fixtures: &Fixtures) -> Result<Vec<String>> {
    use testcontainers::bollard::query_parameters::{
        ListImagesOptionsBuilder, RemoveImageOptionsBuilder,
    };
    let current = ensure_server_image(docker, fixtures).await?.tag;
    let filter = HashMap::from([("reference", vec!["stackproof/server"])]);
    let images = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new().filters(&filter).build(),
        ))
        .await
        .map_err(Error::docker("list stackproof images"))?;
    let mut removed = Vec::new();
    for image in images {
        if image.repo_tags.contains(&current) {
            continue;
        }
        let opts = RemoveImageOptionsBuilder::new().build();
        // An image a container still uses stays: removing it is not ours to force.
        if docker
            .remove_image(&image.id, Some(opts), None)
            .await
            .is_ok()
        {
            removed.extend(image.repo_tags.clone());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_progress_counts_the_packages_apt_sets_up() {
        let p = super::Progress {
            bar: None,
            started: std::time::Instant::now(),
            packages: Default::default(),
        };
        p.step("0 upgraded, 250 newly installed, 0 to remove and 0 not upgraded.");
        assert_eq!(p.packages.get(), (250, 0));
        p.step("Setting up nginx-common (1.22.1-9+deb12u2) ...");
        p.step("Setting up haproxy (2.6.12-1+deb12u4) ...");
        assert_eq!(p.packages.get(), (250, 2));
    }
}
