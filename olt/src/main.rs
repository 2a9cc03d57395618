//! `olt`: see [`olt::cli`].

fn main() -> std::process::ExitCode {
    let program = std::env::current_exe()
        .into_iter()
        .map(Into::into)
        .collect();
    olt::cli::main_with(program, std::env::args_os().collect())
}
