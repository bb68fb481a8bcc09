fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/weir/metadata/v1/records.proto",
        "proto/weir/metadata/v1/groups.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
