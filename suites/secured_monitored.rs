//! secured_monitored: HTTPS at the load balancer, three firewalls, and
//! monitoring. Every claim of CLAIMS.md's secured_monitored section against
//! real containers, and every mutant of `fixtures/designs/secured_monitored/mutants/`
//! failing the claim it names.

fn main() -> std::process::ExitCode {
    stackproof::Suite::new("secured_monitored").run()
}
