//! Users' files from the field are truncated, templated, binary or odd:
//! every mapper, through `config::apply` as `--config` calls it, and the
//! loader of design folders (design, claims, mutant and service files),
//! must answer with a mapping or a clear error, never a panic. Seeded with the
//! realistic files of `tests/configs/` and mutated deterministically (the
//! same cases every run), then with random cases up to a time budget
//! (`STACKPROOF_FUZZ_SECONDS`, 2 by default). `ci/fuzz.sh` runs them at
//! length and measures the code they reach, to the plateau.

use std::path::{Path, PathBuf};

use super::registry::SERVERS;
use super::{AddressArg, ConfigArg, apply};
use crate::design::Design;

/// Whole sites: several of a student's files for one design at once, with
/// the addresses they name given as `--address` does, so that what one file
/// says of the hosts (a balancer's server lines) is mapped in another (a
/// firewall's sources). (design, its files as (kind, host, file under
/// tests/configs), its `--address` arguments.)
type Site = (
    &'static str,
    &'static [(&'static str, Option<&'static str>, &'static str)],
    &'static [&'static str],
);
const SITES: &[Site] = &[
    (
        "secured_monitored",
        &[
            ("haproxy", None, "haproxy/https_complete.cfg"),
            ("iptables", Some("server-1"), "iptables/rules_server.v4"),
            ("iptables", Some("server-2"), "iptables/ufw_server.sh"),
            ("iptables", Some("lb-1"), "iptables/iptables_lb.sh"),
            ("prometheus", None, "prometheus/prometheus.yml"),
        ],
        &["34.229.66.76=lb-1"],
    ),
    (
        "scale_up",
        &[
            ("haproxy", None, "haproxy/lb_debian_default.cfg"),
            ("keepalived", Some("lb-1"), "keepalived/lb-01.conf"),
            ("keepalived", Some("lb-2"), "keepalived/lb-02.conf"),
            ("nginx", None, "nginx/upstream_php"),
            ("php-fpm", None, "php-fpm/www.conf"),
        ],
        &[],
    ),
    (
        "distributed",
        &[
            ("haproxy", None, "haproxy/lb_listen_style.cfg"),
            ("mariadb", Some("server-1"), "mariadb/primary.cnf"),
            ("mariadb", Some("server-2"), "mariadb/replica.cnf"),
            ("nginx", None, "nginx/default_with_php"),
        ],
        &["100.25.34.211=server-1", "54.160.85.72=server-2"],
    ),
];

/// The command line's own arguments that name users' files and addresses.
const ARGUMENTS: &[&str] = &[
    "lb-1:haproxy=tests/configs/haproxy/lb_one_server.cfg",
    "nginx=/etc/nginx/sites-available/default",
    "server-2:mariadb=./50-server.cnf",
    "10.0.0.5=lb-1",
    "34.229.66.76=lb-2",
];

/// A small deterministic generator (xorshift): the same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Text that people and tools put into config files.
const PIECES: &[&str] = &[
    "{",
    "}",
    "{{ VRID }}",
    "STATE_1",
    "#",
    ";",
    "\"",
    "'",
    ":",
    "::",
    "=",
    "/",
    "*",
    "0.0.0.0",
    "10.0.0.1",
    "256.1.1.1",
    "[::1]:80",
    ":99999",
    "-1",
    "server",
    "bind",
    "listen",
    "\\",
    "\t",
    "\r\n",
    "\u{feff}",
    "é",
    "${HOME}",
    "$(reboot)",
    "`id`",
    "\0",
    "1e999",
];

/// The words the code under test compares against: its string literals
/// with no space in them (`server-template`, `nopreempt`, `--dport`), as a
/// libFuzzer dictionary gives them. A mutation can then write a directive
/// that no seed holds and reach the branch that answers it.
fn dictionary(sources: &[&str]) -> Vec<String> {
    let mut words = std::collections::BTreeSet::new();
    for source in sources {
        // Every other piece between double quotes is a literal (escaped
        // quotes are rare enough in our sources to ignore).
        for literal in source.split('"').skip(1).step_by(2) {
            let plain = literal
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c));
            if plain && (2..=32).contains(&literal.len()) {
                words.insert(literal.to_string());
            }
        }
    }
    words.into_iter().collect()
}

/// The sources of the mappers of users' files: their dictionary.
const MAPPER_SOURCES: &[&str] = &[
    include_str!("mod.rs"),
    include_str!("haproxy/mod.rs"),
    include_str!("iptables/mod.rs"),
    include_str!("nginx.rs"),
    include_str!("apache.rs"),
    include_str!("keepalived.rs"),
    include_str!("mariadb.rs"),
    include_str!("php_fpm.rs"),
    include_str!("prometheus.rs"),
];

/// The sources of the loader of design folders: its dictionary.
const LOADER_SOURCES: &[&str] = &[
    include_str!("../design.rs"),
    include_str!("../spec.rs"),
    include_str!("../mutant.rs"),
    include_str!("../fixtures.rs"),
];

/// Deterministic mutations of users' text.
struct Mutator {
    rng: Rng,
    words: Vec<String>,
}

impl Mutator {
    fn new(seed: u64, sources: &[&str]) -> Mutator {
        Mutator {
            rng: Rng(seed),
            words: dictionary(sources),
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n)
    }

    /// One to three mutations of `seed`.
    fn mutate(&mut self, seed: &str) -> String {
        let mut text = seed.to_string();
        for _ in 0..1 + self.rng.below(3) {
            text = if self.rng.below(4) == 0 && !self.words.is_empty() {
                self.put_a_word(&text)
            } else {
                mutate_once(&text, &mut self.rng)
            };
        }
        text
    }

    /// A word of the dictionary put at the start of a line (where a
    /// directive goes), or in place of one of the text's words.
    fn put_a_word(&mut self, text: &str) -> String {
        let word = self.words[self.rng.below(self.words.len())].clone();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        if lines.is_empty() {
            return word;
        }
        let i = self.rng.below(lines.len());
        let line = &mut lines[i];
        if self.rng.below(2) == 0 {
            let indent = line.len() - line.trim_start().len();
            line.insert_str(indent, &format!("{word} "));
        } else {
            let words: Vec<&str> = line.split_whitespace().collect();
            if !words.is_empty() {
                let old = words[self.rng.below(words.len())].to_string();
                *line = line.replacen(&old, &word, 1);
            }
        }
        lines.join("\n")
    }
}

/// One mutation of `seed`.
fn mutate_once(seed: &str, rng: &mut Rng) -> String {
    let lines: Vec<&str> = seed.lines().collect();
    match rng.below(7) {
        // Truncated anywhere (on a character boundary).
        0 => {
            let mut at = rng.below(seed.len() + 1);
            while !seed.is_char_boundary(at) {
                at -= 1;
            }
            seed[..at].to_string()
        }
        // A line dropped, or doubled.
        1 | 2 if !lines.is_empty() => {
            let i = rng.below(lines.len());
            let mut out: Vec<&str> = lines.clone();
            if rng.below(2) == 0 {
                out.remove(i);
            } else {
                out.insert(i, lines[i]);
            }
            out.join("\n")
        }
        // A piece of text put in at a random place, several times.
        3 | 4 => {
            let mut out = seed.to_string();
            for _ in 0..1 + rng.below(4) {
                let mut at = rng.below(out.len() + 1);
                while !out.is_char_boundary(at) {
                    at -= 1;
                }
                out.insert_str(at, PIECES[rng.below(PIECES.len())]);
            }
            out
        }
        // A word replaced by a piece.
        5 => {
            let words: Vec<&str> = seed.split_whitespace().collect();
            if words.is_empty() {
                return seed.to_string();
            }
            let w = words[rng.below(words.len())];
            seed.replacen(w, PIECES[rng.below(PIECES.len())], 1)
        }
        // Lines shuffled.
        _ => {
            let mut out: Vec<&str> = lines.clone();
            for i in (1..out.len()).rev() {
                out.swap(i, rng.below(i + 1));
            }
            out.join("\n")
        }
    }
}

/// Maps `text` as a user's `kind` file; a panic is what this hunts.
fn map_one(design: &Design, kind: &str, host: Option<&str>, text: &[u8], scratch: &Path) {
    let file = scratch.join("users-file");
    std::fs::write(&file, text).unwrap();
    let arg = ConfigArg {
        host: host.map(str::to_string),
        server: kind.to_string(),
        path: file,
        origin: None,
    };
    let out = scratch.join("mapped");
    let _ = std::fs::remove_dir_all(&out);
    let _ = apply(design, &[arg], None, &[], &out);
}

/// Maps the files of `site` (written from `texts`) together; a panic is
/// what this hunts. Whether the mapping was taken.
fn map_site(design: &Design, site: &Site, texts: &[String], scratch: &Path) -> bool {
    let (_, files, addresses) = site;
    let mut args = Vec::new();
    for (i, ((kind, host, _), text)) in files.iter().zip(texts).enumerate() {
        let path = scratch.join(format!("site-file-{i}"));
        std::fs::write(&path, text).unwrap();
        args.push(ConfigArg {
            host: host.map(str::to_string),
            server: kind.to_string(),
            path,
            origin: None,
        });
    }
    let addresses: Vec<AddressArg> = addresses.iter().map(|a| a.parse().unwrap()).collect();
    let out = scratch.join("mapped");
    let _ = std::fs::remove_dir_all(&out);
    apply(design, &args, None, &addresses, &out).is_ok()
}

/// How long the random cases run: `STACKPROOF_FUZZ_SECONDS`, 2 by default.
fn budget() -> std::time::Duration {
    let seconds = std::env::var("STACKPROOF_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    std::time::Duration::from_secs(seconds)
}

/// Where the realistic users' files are: the seeds.
fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

fn seeds(folder: &str) -> Vec<(PathBuf, String)> {
    let dir = configs().join(folder);
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect();
    out.sort();
    out
}

/// The trail a long run prints: how many cases had run after each doubling
/// of the time (`ci/fuzz.sh` measures the code they reached).
struct Trail {
    started: std::time::Instant,
    next_mark: u64,
    marks: Vec<String>,
}

impl Trail {
    fn new() -> Trail {
        Trail {
            started: std::time::Instant::now(),
            next_mark: 1,
            marks: Vec::new(),
        }
    }

    /// Notes `cases` at a doubling; true once the time budget is spent.
    fn mark(&mut self, cases: usize) -> bool {
        let elapsed = self.started.elapsed();
        let spent = elapsed >= budget();
        if elapsed.as_secs() >= self.next_mark || spent {
            self.marks.push(format!("{} s {cases}", elapsed.as_secs()));
            self.next_mark = (elapsed.as_secs() + 1).next_power_of_two();
        }
        spent
    }

    fn summary(&self, cases: usize, what: &str) -> String {
        format!(
            "{cases} {what} in {:.1} s (by time: {})",
            self.started.elapsed().as_secs_f64(),
            self.marks.join(", ")
        )
    }
}

/// The cases a target ran and the first ten that panicked.
#[derive(Default)]
struct Hunt {
    cases: usize,
    panicked: Vec<String>,
}

impl Hunt {
    /// Runs one case; a panic is noted as `what` the case was.
    fn case(&mut self, what: impl FnOnce() -> String, case: impl FnOnce()) {
        self.cases += 1;
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(case));
        if caught.is_err() && self.panicked.len() < 10 {
            self.panicked.push(what());
        }
    }
}

#[test]
fn no_users_file_makes_a_mapper_panic() {
    let scratch = crate::tempdir::TempDir::new("fuzz");
    std::fs::create_dir_all(scratch.path()).unwrap();
    let mut designs = std::collections::HashMap::new();
    for server in SERVERS {
        for (design, _) in server.fuzz_onto {
            designs
                .entry(*design)
                .or_insert_with(|| Design::load(design).unwrap());
        }
    }
    let mut mutator = Mutator::new(0x5eed_5eed_5eed_5eed, MAPPER_SOURCES);
    let mut hunt = Hunt::default();
    // One file of `kind`, mapped onto every design that runs it.
    let each_design = |hunt: &mut Hunt, kind: &str, text: &[u8], what: &str| {
        let onto = super::registry::server(kind).unwrap().fuzz_onto;
        for (design, host) in onto {
            hunt.case(
                || {
                    format!(
                        "{kind} onto {design} ({what}): {:?}",
                        String::from_utf8_lossy(text)
                    )
                },
                || map_one(&designs[design], kind, *host, text, scratch.path()),
            );
        }
    };
    let sites: Vec<Vec<String>> = SITES
        .iter()
        .map(|(_, files, _)| {
            files
                .iter()
                .map(|(_, _, f)| std::fs::read_to_string(configs().join(f)).unwrap())
                .collect()
        })
        .collect();
    for (site, texts) in SITES.iter().zip(&sites) {
        // A seed refused whole would leave its site unfuzzed.
        assert!(
            map_site(&designs[site.0], site, texts, scratch.path()),
            "the {} site of the fuzz seeds is not mapped as it is",
            site.0
        );
    }
    let mut trail = Trail::new();
    let mut round = 0;
    loop {
        for kind in SERVERS.iter().map(|s| s.name) {
            for (path, seed) in seeds(kind) {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if round == 0 {
                    // The fixed cases: empty, binary, huge, the seed itself.
                    each_design(&mut hunt, kind, b"", "empty");
                    each_design(&mut hunt, kind, &[0xff, 0xfe, 0, 0x80], "binary");
                    each_design(&mut hunt, kind, seed.repeat(200).as_bytes(), "huge");
                    each_design(&mut hunt, kind, seed.as_bytes(), &name);
                }
                for _ in 0..8 {
                    let text = mutator.mutate(&seed);
                    each_design(&mut hunt, kind, text.as_bytes(), &name);
                }
            }
        }
        // Whole sites, one of their files mutated.
        for (site, seed) in SITES.iter().zip(&sites) {
            for _ in 0..4 {
                let mut texts = seed.clone();
                let i = mutator.below(texts.len());
                texts[i] = mutator.mutate(&texts[i]);
                hunt.case(
                    || format!("the {} site, {}: {:?}", site.0, site.1[i].2, texts[i]),
                    || {
                        map_site(&designs[site.0], site, &texts, scratch.path());
                    },
                );
            }
        }
        // `--config` and `--address` as typed.
        for argument in ARGUMENTS {
            let text = mutator.mutate(argument);
            hunt.case(
                || format!("the argument {text:?}"),
                || {
                    let _ = text.parse::<ConfigArg>();
                    let _ = text.parse::<AddressArg>();
                },
            );
        }
        round += 1;
        if trail.mark(hunt.cases) {
            break;
        }
    }
    eprintln!("{}", trail.summary(hunt.cases, "users' files mapped"));
    assert!(
        hunt.panicked.is_empty(),
        "mappers panicked on:\n{}",
        hunt.panicked.join("\n")
    );
}

/// Design folders of the user's (copies of simple_web_nginx and scale_up,
/// with a service of their own), their files mutated one at a time.
#[test]
fn no_design_folder_makes_the_loader_panic() {
    let scratch = crate::tempdir::TempDir::new("fuzz-design");
    let mut files = Vec::new();
    for base in ["simple_web_nginx", "scale_up"] {
        let dir = scratch.path().join(base);
        crate::design::new_design(&dir, base).unwrap();
        let service = dir.join("services/nginx/service.toml");
        std::fs::create_dir_all(service.parent().unwrap()).unwrap();
        let library =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/services/nginx/service.toml");
        std::fs::copy(library, &service).unwrap();
        // `new` copies no mutant: the user writes one, here the built-in's first.
        let builtin = std::fs::read_dir(crate::design::builtin_root().join(base).join("mutants"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .min()
            .unwrap();
        let mutant = dir
            .join("mutants")
            .join(builtin.file_name().unwrap())
            .join("mutant.toml");
        std::fs::create_dir_all(mutant.parent().unwrap()).unwrap();
        std::fs::copy(builtin.join("mutant.toml"), &mutant).unwrap();
        for file in [
            dir.join("design.toml"),
            dir.join("claims.toml"),
            dir.join("dns.zone"),
            mutant,
            service.clone(),
        ] {
            let seed = std::fs::read_to_string(&file).unwrap();
            files.push((dir.clone(), file, seed));
        }
    }
    let mut mutator = Mutator::new(0x0dd_5eed, LOADER_SOURCES);
    let vars: std::collections::BTreeMap<String, String> = [
        ("lb-1.private", "10.0.1.2"),
        ("self.public.iface", "eth0"),
        ("domain", "foobar.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut hunt = Hunt::default();
    let mut trail = Trail::new();
    // The first round is fixed (120 cases a file); then rounds of 8 a file
    // until the time budget is spent.
    let mut per_file = 120;
    loop {
        for (dir, file, seed) in &files {
            for _ in 0..per_file {
                let text = mutator.mutate(seed);
                std::fs::write(file, &text).unwrap();
                hunt.case(
                    || format!("{}: {text:?}", file.display()),
                    || {
                        // A user's template, filled as a run fills it.
                        let _ = crate::fixtures::render(&text, &vars, file);
                        if let Ok(d) = Design::load(dir.to_str().unwrap()) {
                            for m in &d.mutants {
                                let _ = m.apply(d.fixtures.clone());
                            }
                        }
                    },
                );
            }
            std::fs::write(file, seed).unwrap();
        }
        per_file = 8;
        if trail.mark(hunt.cases) {
            break;
        }
    }
    eprintln!("{}", trail.summary(hunt.cases, "design folders loaded"));
    assert!(
        hunt.panicked.is_empty(),
        "the loader panicked on:\n{}",
        hunt.panicked.join("\n")
    );
}
