//! distributed: HAProxy over two servers with a MariaDB primary/replica.
//! The implemented claims of CLAIMS.md's distributed section against real
//! containers, and every mutant of `fixtures/mutants/distributed/` failing
//! the claim it names (see `designs::distributed::NOT_YET` for what is left).

fn main() -> std::process::ExitCode {
    stackproof::suite::main("distributed")
}
