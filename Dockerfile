# The `weir` binary: playground, control plane, agent and inspect in one image.
#   docker build -t weir .
#   docker run --rm -p 9092:9092 weir playground --listen 0.0.0.0:9092
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin weir

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/weir --create-home weir
COPY --from=build /src/target/release/weir /usr/local/bin/weir
USER weir
WORKDIR /var/lib/weir
ENTRYPOINT ["/usr/local/bin/weir"]
CMD ["playground", "--listen", "0.0.0.0:9092"]
