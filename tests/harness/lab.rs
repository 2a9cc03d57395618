//! `lab`: the `scenario` tool (and through it `lab onu ...` and `lab olt ...`), built inside
//! the test package so that `cargo test -p tests` always runs the code it just compiled.

fn main() -> std::process::ExitCode {
    scenarios::cli::main()
}
