//! Generates the gRPC protocol code from `proto/` with protox (a pure-Rust protobuf compiler),
//! so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = "../proto";
    let file = "../proto/bigmgr/agent/v1/agent.proto";
    println!("cargo:rerun-if-changed={file}");
    // sqlx::migrate! embeds migrations/ at compile time: a new migration must rebuild.
    println!("cargo:rerun-if-changed=migrations");
    let fds = protox::compile([file], [proto_root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // prost's codec with small buffers (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::LeanCodec")
        .compile_fds(fds)?;
    Ok(())
}
