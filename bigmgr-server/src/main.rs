//! `bigmgr`: the server binary. REST, gRPC and the CLI arrive with issues 3 and 4; until then it
//! only reports its version and points at the embedding example.

fn main() {
    println!(
        "bigmgr {} (core {}): the server arrives with the gRPC issue; run `cargo run --example quickstart -p bigmgr-core` for the embedded engine",
        env!("CARGO_PKG_VERSION"),
        bigmgr_core::VERSION
    );
}
