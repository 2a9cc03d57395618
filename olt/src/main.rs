//! The `olt` binary: the lab's OLT controller (see the library's `cli` module).

fn main() -> std::process::ExitCode {
    olt::cli::main_with(std::env::args_os().collect())
}
