//! distributed: HAProxy over two servers with a MariaDB primary/replica.
//! Every claim of CLAIMS.md's distributed section against real containers,
//! and every mutant of `fixtures/designs/distributed/mutants/` failing the claim it names.

fn main() -> std::process::ExitCode {
    stackproof::Suite::new("distributed").run()
}
