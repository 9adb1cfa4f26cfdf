//! Compiles the protobuf contract with the pure-Rust `protox` compiler (no `protoc` needed) and
//! writes the encoded descriptor set that gRPC server reflection serves.
use prost::Message;
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/userprofiles/v1/user_profiles.proto",
        "proto/userprofiles/v1/security.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    // The PostgreSQL migrations are embedded by `sqlx::migrate!`.
    println!("cargo:rerun-if-changed=migrations");
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("userprofiles_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
