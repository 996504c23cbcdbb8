//! Compiles proto/*.proto with a vendored protoc, so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Replicated record batches travel as `Bytes`: no copy from the leader's read buffer.
    config.bytes([".samsa.replication.v1.PartitionData.records"]);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/raft.proto", "proto/replication.proto"],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto/raft.proto");
    println!("cargo:rerun-if-changed=proto/replication.proto");
    Ok(())
}
