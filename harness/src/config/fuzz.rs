//! Users' files from the field are truncated, templated, binary or odd:
//! every mapper, through `config::apply` as `--config` calls it, and the
//! loader of design folders (design, claims, mutant and service files),
//! must answer with a mapping or a clear error, never a panic. Seeded with the
//! realistic files of `tests/configs/` and mutated deterministically (the
//! same cases every run), then with random cases up to a time budget
//! (`STACKPROOF_FUZZ_SECONDS`, 2 by default; a longer run hunts further).

use std::path::{Path, PathBuf};

use super::{ConfigArg, apply};
use crate::design::Design;

/// (kind, its folder under tests/configs, a design that runs it, the host).
const TARGETS: &[(&str, &str, &str, Option<&str>)] = &[
    ("haproxy", "haproxy", "secured_monitored", None),
    ("nginx", "nginx", "distributed", None),
    ("apache", "apache", "simple_web", None),
    ("keepalived", "keepalived", "scale_up", Some("lb-1")),
    ("mariadb", "mariadb", "distributed", Some("server-2")),
    ("php-fpm", "php-fpm", "distributed", None),
    ("prometheus", "prometheus", "scale_up", None),
    ("iptables", "iptables", "secured_monitored", Some("lb-1")),
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

/// One mutation of `seed`.
fn mutate(seed: &str, rng: &mut Rng) -> String {
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

/// Maps `text` as a user's `kind` file (panics are what this test hunts)
/// and returns the shapes of what came out: each report or error line with
/// every word the file itself holds and every word that is not plain
/// lowercase (paths, addresses, numbers, names) blanked, so what is left
/// is the mapper's own wording, one rule or refusal each. How
/// many distinct shapes a run reaches is its coverage of the mappers'
/// behaviour; it stops growing when the run plateaus.
fn map_one(
    design: &Design,
    kind: &str,
    host: Option<&str>,
    text: &[u8],
    scratch: &Path,
) -> Vec<String> {
    let file = scratch.join("users-file");
    std::fs::write(&file, text).unwrap();
    let arg = ConfigArg {
        host: host.map(str::to_string),
        kind: kind.to_string(),
        path: file,
        origin: None,
    };
    let out = scratch.join("mapped");
    let _ = std::fs::remove_dir_all(&out);
    let said = match apply(design, &[arg], None, &[], &out) {
        Ok(applied) => applied.report.join("\n"),
        Err(e) => format!("refused: {}", e.chain()),
    };
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| c.is_whitespace() || "`'\"{}();,:/=[]<>@*".contains(c))
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect()
    };
    let theirs: std::collections::HashSet<String> =
        words(&String::from_utf8_lossy(text)).into_iter().collect();
    said.lines()
        .map(|line| {
            let line = words(line);
            let mut ours: Vec<&str> = Vec::new();
            for w in &line {
                // Our wording is plain lowercase words; anything else is a
                // fragment of the file (a path, an address, a quoted piece).
                let plain = w.chars().all(|c| c.is_ascii_lowercase());
                let w = if theirs.contains(w) || !plain {
                    "_"
                } else {
                    w.as_str()
                };
                if !(w == "_" && ours.last() == Some(&"_")) {
                    ours.push(w);
                }
            }
            format!("{kind}: {}", shape(&ours.join(" ")))
        })
        .collect()
}

/// `text` with what varies from file to file blanked: digits, and whatever
/// is quoted in backticks or double quotes.
fn shape(text: &str) -> String {
    let mut out = String::new();
    let mut quoted: Option<char> = None;
    for c in text.chars() {
        match (quoted, c) {
            (Some(q), c) if c == q => {
                quoted = None;
                out.push(c);
            }
            (Some(_), _) => {}
            (None, '`' | '"') => {
                quoted = Some(c);
                out.push(c);
            }
            (None, c) if c.is_ascii_digit() => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            (None, c) => out.push(c),
        }
    }
    out
}

fn seeds(folder: &str) -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(folder);
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect();
    out.sort();
    out
}

#[test]
fn no_users_file_makes_a_mapper_panic() {
    let scratch = crate::tempdir::TempDir::new("fuzz");
    std::fs::create_dir_all(scratch.path()).unwrap();
    let seconds: u64 = std::env::var("STACKPROOF_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let mut rng = Rng(0x5eed_5eed_5eed_5eed);
    // Read between rounds while `run` holds them: cells.
    let cases = std::cell::Cell::new(0usize);
    let mut found = Vec::new();
    let shapes = std::cell::RefCell::new(std::collections::HashSet::new());
    let mut run = |design: &Design, kind: &str, host: Option<&str>, text: Vec<u8>, what: &str| {
        cases.set(cases.get() + 1);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            map_one(design, kind, host, &text, scratch.path())
        }));
        match caught {
            Ok(lines) => shapes.borrow_mut().extend(lines),
            Err(_) if found.len() < 10 => found.push(format!(
                "{kind} ({what}): {:?}",
                String::from_utf8_lossy(&text)
            )),
            Err(_) => {}
        }
    };
    // The coverage trail: distinct outcomes after each doubling of the time.
    let mut trail: Vec<String> = Vec::new();
    let mut next_mark = 1u64;
    let started = std::time::Instant::now();
    let mut round = 0;
    loop {
        for (kind, folder, design, host) in TARGETS {
            let design = Design::load(design).unwrap();
            for (path, seed) in seeds(folder) {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if round == 0 {
                    // The fixed cases: empty, binary, huge, the seed itself.
                    run(&design, kind, *host, Vec::new(), "empty");
                    run(&design, kind, *host, vec![0xff, 0xfe, 0, 0x80], "binary");
                    run(&design, kind, *host, seed.repeat(200).into_bytes(), "huge");
                    run(&design, kind, *host, seed.clone().into_bytes(), &name);
                }
                for _ in 0..8 {
                    let mut text = seed.clone();
                    for _ in 0..1 + rng.below(3) {
                        text = mutate(&text, &mut rng);
                    }
                    run(&design, kind, *host, text.into_bytes(), &name);
                }
            }
        }
        round += 1;
        let elapsed = started.elapsed().as_secs();
        if elapsed >= next_mark || elapsed >= seconds {
            trail.push(format!(
                "{elapsed} s: {} files, {} outcomes",
                cases.get(),
                shapes.borrow().len()
            ));
            next_mark = (elapsed + 1).next_power_of_two();
        }
        if elapsed >= seconds {
            break;
        }
    }
    eprintln!(
        "{} files mapped in {:.1} s, {round} round(s), {} distinct outcomes (the mappers' own wording of a rule or refusal: plain lowercase words not in the file); by time: {}",
        cases.get(),
        started.elapsed().as_secs_f64(),
        shapes.borrow().len(),
        trail.join("; ")
    );
    assert!(
        found.is_empty(),
        "mappers panicked on:\n{}",
        found.join("\n")
    );
}

/// A design folder of the user's (a copy of simple_web_nginx with one
/// service of its own), its files mutated one at a time.
#[test]
fn no_design_folder_makes_the_loader_panic() {
    let scratch = crate::tempdir::TempDir::new("fuzz-design");
    let dir = scratch.path().join("site");
    crate::design::new_design(&dir, "simple_web_nginx").unwrap();
    let service = dir.join("services/nginx/service.toml");
    std::fs::create_dir_all(service.parent().unwrap()).unwrap();
    let library =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/services/nginx/service.toml");
    std::fs::copy(library, &service).unwrap();
    let mutant = std::fs::read_dir(dir.join("mutants"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
        .join("mutant.toml");
    let files = [
        dir.join("design.toml"),
        dir.join("claims.toml"),
        dir.join("dns.zone"),
        mutant,
        service,
    ];
    let mut rng = Rng(0x0dd_5eed);
    let (mut cases, mut found) = (0, Vec::new());
    for file in &files {
        let seed = std::fs::read_to_string(file).unwrap();
        for _ in 0..120 {
            let mut text = seed.clone();
            for _ in 0..1 + rng.below(3) {
                text = mutate(&text, &mut rng);
            }
            std::fs::write(file, &text).unwrap();
            cases += 1;
            let loaded = std::panic::catch_unwind(|| {
                if let Ok(d) = Design::load(dir.to_str().unwrap()) {
                    for m in &d.mutants {
                        let _ = m.apply(d.fixtures.clone());
                    }
                }
            });
            if loaded.is_err() && found.len() < 10 {
                found.push(format!("{}: {text:?}", file.display()));
            }
        }
        std::fs::write(file, &seed).unwrap();
    }
    eprintln!("{cases} design folders loaded");
    assert!(
        found.is_empty(),
        "the loader panicked on:\n{}",
        found.join("\n")
    );
}
