# syntax=docker/dockerfile:1
#
# kerchunk-nos: one static binary in an otherwise empty image.
#
#   docker build --platform linux/amd64 -t kerchunk-nos .
#   docker run --rm kerchunk-nos dump "$MESSAGE"
#
# The final image is FROM scratch and holds /kerchunk-nos and a CA bundle: no
# shell, no libc (the binary is musl static-pie, TLS is rustls + aws-lc with
# compiled-in webpki roots, and musl's resolver reads the /etc/hosts and
# /etc/resolv.conf that Docker/Kubernetes mount into every container). The
# bundle, /etc/ssl/certs/ca-certificates.crt, is those same compiled-in roots
# (`kerchunk-nos ca-bundle`, 0.2 MB): icechunk's S3 client (--icechunk,
# --output-format icechunk) builds its TLS setup from the system store only
# (rustls-native-certs), which finds it at that standard path; without it,
# https to S3 fails (and debug builds panic building the client).
# Exactly this filesystem is assembled without Docker by
# scripts/image-rootfs.sh and tested by tests/static/run.sh (chroot into
# it). Keep the final stage in sync with that script.
#
# The builder is x86_64 only (musl-tools provides x86_64-linux-musl-gcc for
# aws-lc-sys); on arm64 hosts build with --platform linux/amd64.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools file \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target dir between builds; the binary
# is copied out of the (unpersisted) target mount in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    bash scripts/build-static.sh --locked \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/kerchunk-nos /out/kerchunk-nos \
 && /out/kerchunk-nos ca-bundle > /out/ca-certificates.crt

FROM scratch
COPY --from=build /out/kerchunk-nos /kerchunk-nos
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# nobody:nogroup; the binary writes nothing to the filesystem.
USER 65534:65534
ENTRYPOINT ["/kerchunk-nos"]
CMD ["--help"]
