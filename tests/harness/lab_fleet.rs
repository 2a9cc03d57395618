//! `lab-fleet`: the `fleet` tool, built inside the test package so that `cargo test -p tests`
//! always runs the code it just compiled.

fn main() -> std::process::ExitCode {
    fleet::cli::main()
}
