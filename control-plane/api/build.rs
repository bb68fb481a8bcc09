fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/weir/controlplane/v1/control_plane.proto",
        "proto/weir/controlplane/v1/groups.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
