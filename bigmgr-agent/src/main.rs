//! `bigmgr-agent`: the per-host daemon. Its network side arrives with the gRPC issue; the runtime
//! it will wrap is `bigmgr_core::agent`.

fn main() {
    println!(
        "bigmgr-agent {} (core {}): the networked agent arrives with the gRPC issue",
        env!("CARGO_PKG_VERSION"),
        bigmgr_core::VERSION
    );
}
