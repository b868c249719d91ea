//! `bigmgr`: the server binary. Everything is in the `bigmgr_server` library; see
//! `bigmgr --help`.

fn main() -> std::process::ExitCode {
    bigmgr_server::cli::main()
}
