//! scale_up: a keepalived/HAProxy pair behind a VIP over split web, app and
//! database tiers. Every claim of CLAIMS.md's scale_up section against real
//! containers, and every mutant of `fixtures/designs/scale_up/mutants/` failing the
//! claim it names.

fn main() -> std::process::ExitCode {
    stackproof::Suite::new("scale_up").run()
}
