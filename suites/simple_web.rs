//! simple_web: one LAMP server found through DNS. Every claim of CLAIMS.md's
//! simple_web section against real containers, and every mutant of
//! `fixtures/designs/simple_web/mutants/` failing the claim it names.

fn main() -> std::process::ExitCode {
    stackproof::Suite::new("simple_web").run()
}
