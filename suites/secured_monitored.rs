//! secured_monitored: HTTPS at the load balancer, three firewalls, and
//! monitoring. The claims of CLAIMS.md's secured_monitored section against
//! real containers (see `designs::secured_monitored::NOT_YET` for what is
//! left), and every mutant of `fixtures/mutants/secured_monitored/` failing
//! the claim it names.

fn main() -> std::process::ExitCode {
    stackproof::suite::main("secured_monitored")
}
